"""``buildbot-mq-ordered bench``: ``ordered-wamp`` against Buildbot's stock ``wamp``.

Both MQs run the same workload on this host, alternating run by run (which
one goes first alternates too): ``--masters`` masters, each a separate
process that produces its share and consumes every message. Each MQ has
its own router, started once, both on this host: ``ordered-wamp``'s with
the sequencer (production config), the stock MQ's with ``--open-realm``
(it publishes on ``org.buildbot.mq.*`` topics).

A run offers a total rate (messages/s, all masters together) for
``--duration`` seconds, or produces flat out (each master keeps at most
``--window`` of its own messages in flight) for ``--duration`` seconds.
Per run: messages/s each master delivered, produce-to-deliver latency
(p50/p99/max over all deliveries), peak RSS of a master (``ru_maxrss``) and
of the router's process tree (sampled), and what was lost, duplicated, or
delivered in different orders. At the end: a table per MQ and offered rate
(medians over ``--repeat``), and the ratios ordered-wamp / wamp.
"""

import json

from buildbot_mq_ordered.load.benchfigures import FLAT_OUT
from buildbot_mq_ordered.load.benchfigures import ORDERED
from buildbot_mq_ordered.load.benchfigures import ORDERED_PG
from buildbot_mq_ordered.load.benchfigures import STOCK
from buildbot_mq_ordered.load.benchplot import plot
from buildbot_mq_ordered.load.benchrun import Bench
from buildbot_mq_ordered.load.driver import require_crossbar
from buildbot_mq_ordered.load.driver import run_guarded
from buildbot_mq_ordered.load.driver import say
from buildbot_mq_ordered.load.processes import terminate


def add_parser(sub):
    p = sub.add_parser(
        'bench', help="benchmark ordered-wamp against Buildbot's stock wamp MQ",
        description="Run the same multi-master workload over ordered-wamp and "
                    "Buildbot's stock wamp MQ, alternating, and compare throughput, "
                    "latency and memory.")
    p.add_argument('--masters', type=int, default=3, help="masters (default: 3)")
    p.add_argument('--rate', default='100,300,600,1200,2400,max',
                   help="comma-separated offered rates, messages/s of all masters "
                        "together; 'max': flat out (default: 100,300,600,1200,2400,max)")
    p.add_argument('--duration', type=float, default=5.0,
                   help="seconds of production per run (default: 5)")
    p.add_argument('--messages', type=int, default=None,
                   help="messages per master per run instead of --duration")
    p.add_argument('--payload', type=int, default=500,
                   help="payload bytes per message (default: 500)")
    p.add_argument('--distinct-keys', type=int, default=0,
                   help="spread the messages over this many distinct routing keys "
                        "(default: 10 shared keys + one private key per master)")
    p.add_argument('--window', type=int, default=2000,
                   help="flat out: own messages in flight per master (default: 2000)")
    p.add_argument('--repeat', type=int, default=3,
                   help="runs per MQ and rate; the table shows medians (default: 3)")
    p.add_argument('--warmup', type=float, default=2.0,
                   help="seconds of an unreported run per MQ before the first one, so "
                        "that no figure includes a router's first connections "
                        "(default: 2; 0: none)")
    p.add_argument('--mq', default=None,
                   help=f"MQs to run: {ORDERED}, {ORDERED_PG}, {STOCK} (default: "
                        f"{ORDERED},{STOCK}, and {ORDERED_PG} with --postgresql)")
    p.add_argument('--postgresql', metavar='URL',
                   help=f"{ORDERED_PG}'s journal: postgresql://USER@HOST[:PORT]/DB, a "
                        "database the bench may write (tables are created on first use; "
                        "the password from PGPASSWORD or ~/.pgpass)")
    p.add_argument('--json', metavar='FILE', help="write the figures as JSON")
    p.add_argument('--plot', metavar='FILE.png',
                   help="plot latency against offered rate (needs matplotlib)")
    p.add_argument('--keep', action='store_true',
                   help="keep the temporary directory (logs, results)")
    p.set_defaults(run=run)


def parse_rates(text):
    rates = []
    for word in text.split(','):
        word = word.strip().lower()
        if word in (FLAT_OUT, 'flat', '0'):
            rates.append(FLAT_OUT)
        elif word:
            try:
                rate = float(word)
            except ValueError:
                raise SystemExit(f"--rate: not a rate: {word!r}")
            if rate <= 0:
                raise SystemExit(f"--rate: must be positive or 'max', not {word!r}")
            rates.append(rate)
    if not rates:
        raise SystemExit("--rate: no rate given")
    return rates


def check_args(args):
    if args.masters < 1 or args.repeat < 1 or args.duration <= 0 or args.window < 1:
        raise SystemExit("--masters, --repeat, --duration and --window must be positive")
    if args.messages is not None and args.messages < 1:
        raise SystemExit("--messages must be positive")
    default = [ORDERED, ORDERED_PG, STOCK] if args.postgresql else [ORDERED, STOCK]
    mqs = [m.strip() for m in args.mq.split(',') if m.strip()] if args.mq else default
    if not mqs or any(m not in (ORDERED, ORDERED_PG, STOCK) for m in mqs):
        raise SystemExit(f"--mq: choose from {ORDERED}, {ORDERED_PG}, {STOCK}")
    if ORDERED_PG in mqs and not args.postgresql:
        raise SystemExit(f"--mq {ORDERED_PG} needs --postgresql URL")
    if args.plot:
        try:
            import matplotlib  # noqa: F401
        except ImportError:
            raise SystemExit("--plot needs matplotlib: "
                             "pip install 'buildbot-mq-ordered[bench]'")
    try:
        import psutil  # noqa: F401
    except ImportError:
        raise SystemExit("bench needs psutil: pip install 'buildbot-mq-ordered[bench]'")
    return parse_rates(args.rate), list(dict.fromkeys(mqs))


def run(args):
    rates, mqs = check_args(args)
    require_crossbar('the bench')
    routers = {}
    started = {}

    def body(tmp):
        bench = started['bench'] = Bench(args, rates, mqs, tmp, routers)
        bench.start_routers()
        bench.run_all()
        print()
        for line in bench.report():
            print(line)
        if args.json:
            with open(args.json, 'w') as f:
                json.dump(bench.figures(), f, indent=1)
            say(f"figures written to {args.json}")
        if args.plot:
            plot(bench.table(), mqs, f"{args.masters} masters, {args.payload} B payload",
                 args.plot)
            say(f"plot written to {args.plot}")
        return 0 if all(r['ok'] for r in bench.runs) else 1

    def cleanup():
        if 'bench' in started:
            started['bench'].stop_nodes()
        terminate([r.proc for r in routers.values()], grace=30)

    return run_guarded('bmo-bench-', body, cleanup, keep=args.keep,
                       what=lambda: "everything this bench started")
