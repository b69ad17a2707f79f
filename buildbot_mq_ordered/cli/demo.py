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

from buildbot_mq_ordered.load.driver import require_crossbar
from buildbot_mq_ordered.load.driver import run_guarded
from buildbot_mq_ordered.load.driver import say
from buildbot_mq_ordered.load.nodes import NodeProcess
from buildbot_mq_ordered.load.nodes import run_nodes
from buildbot_mq_ordered.load.processes import Router
from buildbot_mq_ordered.load.processes import terminate


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
        say(f"router: ready in {time.monotonic() - t0:.1f}s ({router.url})")
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
        report = verify(nodes, results, args)
        print()
        print(report.table())
        print()
        for line in report.summary():
            print(line)
        return 0 if report.passed else 1

    def cleanup():
        nodes, router = started['nodes'], started['router']
        terminate([n.proc for n in nodes], grace=10)
        terminate([router.proc] if router is not None else [], grace=30)
        for n in nodes:
            n.close()

    return run_guarded('bmo-demo-', body, cleanup, keep=args.keep,
                       what=lambda: f"{len(started['nodes'])} masters and the router")


class Progress:
    """One line per tick: each master's delivered/produced, delivery rate."""

    def __init__(self, nodes):
        self.nodes = nodes
        self.t0 = None
        self.last = None

    def go(self):
        self.t0 = self.last_t = time.monotonic()
        self.last = 0
        say("running: per master delivered/produced; rate = messages/s each master "
            "delivers")

    def tick(self):
        if self.t0 is None:
            return
        now = time.monotonic()
        delivered = [n.progress[0] for n in self.nodes]
        low = min(delivered)
        rate = (low - self.last) / max(now - self.last_t, 1e-6)
        self.last, self.last_t = low, now
        cells = '  '.join(f"{n.name} {n.progress[0]:>6}/{n.progress[1]:<6}"
                          for n in self.nodes)
        say(f"{now - self.t0:6.1f}s  {cells}  rate {rate:7.0f}/s")


def percentile(values, q):
    if not values:
        return None
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))]


class Report:
    def __init__(self):
        self.rows = []
        self.problems = []
        self.facts = []

    @property
    def passed(self):
        return not self.problems

    def table(self):
        head = ('master', 'produced', 'delivered', 'lost', 'duplicated', 'order',
                'msg/s', 'p50 ms', 'p99 ms')
        rows = [head] + [tuple(str(c) for c in r) for r in self.rows]
        widths = [max(len(r[i]) for r in rows) for i in range(len(head))]
        lines = []
        for k, r in enumerate(rows):
            lines.append('  '.join(c.ljust(w) if i == 0 else c.rjust(w)
                                   for i, (c, w) in enumerate(zip(r, widths))))
            if k == 0:
                lines.append('  '.join('-' * w for w in widths))
        return '\n'.join(lines)

    def summary(self):
        lines = list(self.facts)
        if self.passed:
            lines.append("PASS: every master delivered every message once, "
                         "all in the same order")
        else:
            lines += [f"FAIL: {p}" for p in self.problems]
        return lines


def verify(nodes, results, args):
    from buildbot_mq_ordered.load.loadnode import routing_key
    rep = Report()
    produced = {}
    for n, r in zip(nodes, results):
        if r is None:
            rep.problems.append(f"{n.name} wrote no result (see {n.log_path})")
            produced[n.name] = n.produced_final or n.progress[1]
        else:
            produced[n.name] = r['produced']
    expected = {(name, i) for name, count in produced.items() for i in range(count)}
    total = len(expected)
    good = [r for r in results if r is not None]
    # the reference order: the longest delivered sequence
    ref = max((r['delivered'] for r in good), key=len, default=[])
    ref = [tuple(x) for x in ref]
    same_everywhere = True
    for n, r in zip(nodes, results):
        if r is None:
            rep.rows.append((n.name, produced[n.name], '-', '-', '-', '-', '-', '-', '-'))
            same_everywhere = False
            continue
        delivered = [tuple(x) for x in r['delivered']]
        got = set(delivered)
        lost = len(expected - got)
        dups = len(delivered) - len(got)
        foreign = len(got - expected)
        # same relative order as the reference, over the messages both have
        common = got & set(ref)
        mine = [m for m in dict.fromkeys(delivered) if m in common]
        theirs = [m for m in dict.fromkeys(ref) if m in common]
        same = mine == theirs
        same_everywhere &= same and not lost
        elapsed = (r['last_at'] or 0) - (r['started_at'] or 0)
        rate = len(delivered) / elapsed if elapsed > 0 else 0
        lat = r['latencies']
        rep.rows.append((n.name, r['produced'], len(delivered), lost, dups,
                         'same' if same else 'DIFFERS', f"{rate:.0f}",
                         fmt_ms(percentile(lat, 0.50)), fmt_ms(percentile(lat, 0.99))))
        if lost:
            rep.problems.append(f"{n.name} lost {lost} of {total} messages")
        if dups:
            rep.problems.append(f"{n.name} delivered {dups} messages twice")
        if foreign:
            rep.problems.append(f"{n.name} delivered {foreign} messages nobody produced")
        if not same:
            rep.problems.append(f"{n.name} delivered in a different order")
        # the sequencer's numbering, as this master saw it
        pos = r['positions']
        if pos and pos != list(range(pos[0], pos[0] + len(pos))):
            rep.problems.append(f"{n.name}: stream positions are not consecutive")
        if not r['complete'] and not lost:
            rep.problems.append(f"{n.name} did not finish")
        # each producer's messages in its produce order
        nxt = {}
        for p, i in dict.fromkeys(delivered):
            if i < nxt.get(p, 0):
                rep.problems.append(f"{n.name} delivered {p}'s messages out of "
                                    "their produce order")
                break
            nxt[p] = i + 1
    # per-key sequence numbers: 1, 2, 3, ... per routing key (a fresh router),
    # and the same (pos, seq) for a message on every master
    index = {n.name: k for k, n in enumerate(nodes)}
    keys_checked = set()
    numbering = None
    for r in good:
        if not r['seqs']:
            continue
        last = {}
        mine = {}
        for (p, i), pos, seq in zip(map(tuple, r['delivered']), r['positions'], r['seqs']):
            key = routing_key(p, i, args.shared_keys, 0, index.get(p, 0), len(nodes))
            if seq != last.get(key, 0) + 1:
                rep.problems.append(f"{r['name']}: routing key {key} numbered "
                                    f"{seq} after {last.get(key, 0)}")
                break
            last[key] = seq
            mine[(p, i)] = (pos, seq)
        keys_checked.update(last)
        if numbering is None:
            numbering = mine
        elif any(numbering.get(m, v) != v for m, v in mine.items()):
            rep.problems.append(f"{r['name']}: a message has another position or "
                                "sequence number than on the first master")
    if same_everywhere and ref:
        first = good[0]['positions'][0] if good[0]['positions'] else None
        where = (f" (stream positions {first}..{first + len(ref) - 1}, per-key "
                 f"sequence numbers 1, 2, 3, ... on {len(keys_checked)} routing keys)"
                 if first else "")
        rep.facts.append(f"order: all {len(nodes)} masters delivered the same "
                         f"{len(ref)} messages in the same order{where}")
    lat_all = [x for r in good for x in r['latencies']]
    span = [r for r in good if r['last_at'] and r['started_at']]
    if span:
        t0 = min(r['started_at'] for r in span)
        t1 = max(r['last_at'] for r in span)
        sum_delivered = sum(len(r['delivered']) for r in good)
        rep.facts.append(
            f"throughput: {total} messages produced, {sum_delivered} deliveries in "
            f"{t1 - t0:.1f}s ({sum_delivered / max(t1 - t0, 1e-6):.0f} deliveries/s "
            f"in total); latency produce-to-deliver p50 "
            f"{fmt_ms(percentile(lat_all, 0.5))} ms, p99 {fmt_ms(percentile(lat_all, 0.99))}"
            f" ms, max {fmt_ms(max(lat_all))} ms")
    return rep


def fmt_ms(seconds):
    if seconds is None:
        return '-'
    ms = seconds * 1000
    return f"{ms:.1f}" if ms < 100 else f"{ms:.0f}"
