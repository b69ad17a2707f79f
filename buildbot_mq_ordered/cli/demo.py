"""``buildbot-mq-ordered demo``: a router and three masters on this machine.

It starts a router (Crossbar with the sequencer inside, its own temporary
node directory, a free loopback port) and ``--masters`` masters, each a
separate process running ``ordered-wamp``. Every master produces at a
steady rate for ``--duration`` seconds, half of its messages on routing keys
all masters share and half on its own, and consumes everything. A line per
second shows what each master delivered and produced; at the end a table
shows what was produced, delivered, lost and duplicated per master, whether
all masters delivered the same order, the throughput and the
produce-to-deliver latency. Exit status 0 only if the order held and nothing
was lost or duplicated. Every process it started is stopped at the end, on
Ctrl-C and on SIGTERM.
"""

import os
import time

from buildbot_mq_ordered.load.demoreport import Progress
from buildbot_mq_ordered.load.demoreport import summary
from buildbot_mq_ordered.load.demoreport import table
from buildbot_mq_ordered.load.driver import require_crossbar
from buildbot_mq_ordered.load.driver import run_guarded
from buildbot_mq_ordered.load.driver import say
from buildbot_mq_ordered.load.nodes import NodeProcess
from buildbot_mq_ordered.load.nodes import produced_counts
from buildbot_mq_ordered.load.nodes import run_nodes
from buildbot_mq_ordered.load.processes import Router
from buildbot_mq_ordered.load.processes import terminate
from buildbot_mq_ordered.load.verify import check_records
from buildbot_mq_ordered.load.workload import routing_key


def add_parser(sub):
    p = sub.add_parser(
        'demo', help="run a router and three masters and check the order they deliver",
        description="Start a router and MASTERS masters (separate processes) on this "
                    "machine, produce a mixed workload for DURATION seconds, and verify "
                    "that every master delivered every message once, in the same order.")
    p.add_argument('--masters', type=int, default=3, help="masters (default: 3)")
    p.add_argument('--duration', type=float, default=10.0,
                   help="seconds of production (default: 10)")
    p.add_argument('--rate', type=float, default=1000.0,
                   help="messages/s offered by all masters together (default: 1000; "
                        "0: flat out)")
    p.add_argument('--messages', type=int, default=None,
                   help="messages produced by all masters together (default: "
                        "rate x duration; with --rate 0: 30000)")
    p.add_argument('--payload', type=int, default=200,
                   help="payload bytes per message (default: 200)")
    p.add_argument('--shared-keys', type=int, default=5,
                   help="routing keys all masters produce on (default: 5)")
    p.add_argument('--keep', action='store_true',
                   help="keep the temporary directory (logs, results)")
    p.set_defaults(run=run)


def plan(args):
    """(messages per master, rate per master, production seconds bound)."""
    if args.masters < 1:
        raise SystemExit("--masters must be at least 1")
    if args.rate < 0 or args.duration <= 0:
        raise SystemExit("--rate must be >= 0 and --duration > 0")
    total = args.messages
    if total is None:
        total = int(args.rate * args.duration) if args.rate else 30000
    if total < args.masters:
        raise SystemExit("--messages must be at least --masters")
    per_master = total // args.masters
    rate = args.rate / args.masters
    seconds = per_master / rate if rate else args.duration
    return per_master, rate, seconds


def run(args):
    per_master, rate, seconds = plan(args)
    require_crossbar('the demo')
    started = {'router': None, 'nodes': []}

    def body(tmp):
        router = started['router'] = Router(cbdir=os.path.join(tmp, 'router'))
        say(f"router: starting Crossbar with the sequencer on 127.0.0.1:{router.port} ...")
        t0 = time.monotonic()
        router.start()
        say(f"router: ready in {time.monotonic() - t0:.1f}s ({router.url}); watch it "
            f"from another shell: buildbot-mq-ordered status --router {router.url}")
        offered = f"{args.rate:g} msg/s in total" if rate else "flat out"
        say(f"masters: starting {args.masters}, each producing {per_master} messages "
            f"({offered}, {args.shared_keys} shared routing keys + one private key "
            f"each, {args.payload} bytes payload) and consuming everything")
        names = [f'master-{i + 1}' for i in range(args.masters)]
        nodes = started['nodes'] = [
            NodeProcess(router.url, name, os.path.join(tmp, name + '.json'),
                        messages=per_master,
                        # flat out, --duration may end production early:
                        # the total is announced when all have finished
                        expect=per_master * args.masters if rate else 0,
                        rate=rate, payload=args.payload,
                        shared_keys=args.shared_keys, index=i, nodes=args.masters,
                        duration=0 if rate else args.duration,
                        timeout=seconds + 90)
            for i, name in enumerate(names)]
        progress = Progress(nodes)
        results = run_nodes(nodes, timeout=seconds + 150, on_tick=progress.tick,
                            tick=1.0, on_go=progress.go)
        progress.tick()
        index = {name: i for i, name in enumerate(names)}
        verdict = check_records(
            produced_counts(nodes, results),
            {n.name: r for n, r in zip(nodes, results)},
            key_of=lambda p, i: routing_key(p, i, args.shared_keys, 0, index.get(p, 0),
                                            len(nodes)),
            logs={n.name: n.log_path for n in nodes})
        for line in [''] + table(verdict) + [''] + summary(verdict):
            print(line)
        return 0 if verdict.passed else 1

    def cleanup():
        nodes, router = started['nodes'], started['router']
        terminate([n.proc for n in nodes], grace=10)
        terminate([router.proc] if router is not None else [], grace=30)
        for n in nodes:
            n.close()

    return run_guarded('bmo-demo-', body, cleanup, keep=args.keep,
                       what=lambda: f"{len(started['nodes'])} masters and the router")
