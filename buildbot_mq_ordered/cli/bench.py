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
import math
import os
import platform
import statistics
import sys
import time

from buildbot_mq_ordered.load.driver import require_crossbar
from buildbot_mq_ordered.load.driver import run_guarded
from buildbot_mq_ordered.load.driver import say
from buildbot_mq_ordered.load.latency import hist_percentile
from buildbot_mq_ordered.load.latency import merge_hists
from buildbot_mq_ordered.load.nodes import NodeProcess
from buildbot_mq_ordered.load.nodes import produced_counts
from buildbot_mq_ordered.load.nodes import run_nodes
from buildbot_mq_ordered.load.processes import Router
from buildbot_mq_ordered.load.processes import terminate
from buildbot_mq_ordered.load.verify import check_summaries

ORDERED = 'ordered-wamp'
STOCK = 'wamp'
FLAT_OUT = 'max'
RSS_EVERY = 0.25
WARMUP_RATE = 300.0


def add_parser(sub):
    p = sub.add_parser(
        'bench', help="benchmark ordered-wamp against Buildbot's stock wamp MQ",
        description="Run the same multi-master workload over ordered-wamp and "
                    "Buildbot's stock wamp MQ, alternating, and compare throughput, "
                    "latency and memory.")
    p.add_argument('--masters', type=int, default=3, help="masters (default: 3)")
    p.add_argument('--rate', default='300,600,1200,max',
                   help="comma-separated offered rates, messages/s of all masters "
                        "together; 'max': flat out (default: 300,600,1200,max)")
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
    p.add_argument('--repeat', type=int, default=1, help="runs per MQ and rate (default: 1)")
    p.add_argument('--warmup', type=float, default=2.0,
                   help="seconds of an unreported run per MQ before the first one, so "
                        "that no figure includes a router's first connections "
                        "(default: 2; 0: none)")
    p.add_argument('--mq', default=f'{ORDERED},{STOCK}',
                   help=f"MQs to run (default: {ORDERED},{STOCK})")
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
    mqs = [m.strip() for m in args.mq.split(',') if m.strip()]
    if not mqs or any(m not in (ORDERED, STOCK) for m in mqs):
        raise SystemExit(f"--mq: choose from {ORDERED}, {STOCK}")
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
            plot(bench, args.plot)
            say(f"plot written to {args.plot}")
        return 0 if all(r['ok'] for r in bench.runs) else 1

    def cleanup():
        if 'bench' in started:
            started['bench'].stop_nodes()
        terminate([r.proc for r in routers.values()], grace=30)

    return run_guarded('bmo-bench-', body, cleanup, keep=args.keep,
                       what=lambda: "everything this bench started")


class Bench:
    def __init__(self, args, rates, mqs, tmp, routers):
        self.args = args
        self.rates = rates
        self.mqs = mqs
        self.tmp = tmp
        self.routers = routers
        self.runs = []
        self.nodes = []
        self.router_peak = {}
        self.router_idle = {}

    # -- routers -------------------------------------------------------------
    def start_routers(self):
        for mq in self.mqs:
            extra = ['--open-realm'] if mq == STOCK else []
            self.routers[mq] = Router(extra_args=extra, cbdir=os.path.join(self.tmp, mq))
        say("routers: starting " + ", ".join(
            f"{mq} on 127.0.0.1:{r.port}" + (" (--open-realm)" if mq == STOCK else "")
            for mq, r in self.routers.items()) + " ...")
        t0 = time.monotonic()
        # in parallel: each takes seconds to start
        for r in self.routers.values():
            r.start_async()
        for r in self.routers.values():
            r.wait_ready()
        say(f"routers: ready in {time.monotonic() - t0:.1f}s")
        if self.args.warmup > 0:
            for mq in self.mqs:
                self.ensure_router(mq)
                r = self.run_one(mq, WARMUP_RATE, 'warmup', duration=self.args.warmup)
                say(f"warm-up {mq}: " + ("done" if r['ok'] else r['problem']))
        for mq, router in self.routers.items():
            self.router_idle[mq] = router.rss()
            self.router_peak.pop(mq, None)

    def ensure_router(self, mq):
        r = self.routers[mq]
        if not r.running:
            say(f"router for {mq} is gone (exit {r.proc.returncode}); starting it again")
            r.stop()
            r.start()

    # -- runs ----------------------------------------------------------------
    def schedule(self):
        k = 0
        for rep in range(self.args.repeat):
            for rate in self.rates:
                order = self.mqs if k % 2 == 0 else list(reversed(self.mqs))
                for mq in order:
                    yield rep, rate, mq
                k += 1

    def run_all(self):
        plan = list(self.schedule())
        for n, (rep, rate, mq) in enumerate(plan, 1):
            self.ensure_router(mq)
            result = self.run_one(mq, rate, rep)
            self.runs.append(result)
            say(f"[{n}/{len(plan)}] " + describe(result))

    def run_one(self, mq, rate, rep, duration=None):
        a = self.args
        m = a.masters
        run_duration = a.duration if duration is None else duration
        router = self.routers[mq]
        flat = rate == FLAT_OUT
        if a.messages is not None and duration is None:
            per_master, duration = a.messages, 0
            # a bound, not a figure: flat out, assume at least 500 messages/s
            seconds = per_master * m / (rate if not flat else 500)
        elif flat:
            per_master, duration = 10 ** 9, run_duration
            seconds = run_duration
        else:
            per_master, duration = max(1, math.ceil(rate * run_duration / m)), 0
            seconds = run_duration
        run_dir = os.path.join(self.tmp, f'{mq}-{rate}-{rep}')
        os.makedirs(run_dir)
        short = 'ow' if mq == ORDERED else 'sw'
        self.nodes = [
            NodeProcess(router.url, f'{short}{i}', os.path.join(run_dir, f'm{i}.json'),
                        mq=mq, messages=per_master, expect=0,
                        rate=0 if flat else rate / m, payload=a.payload,
                        distinct_keys=a.distinct_keys, index=i, nodes=m,
                        duration=duration, window=a.window, record=False,
                        timeout=seconds + 120)
            for i in range(m)]
        peak = [router.rss()]
        last = [0.0]

        def sample():
            if time.monotonic() - last[0] >= RSS_EVERY:
                last[0] = time.monotonic()
                peak[0] = max(peak[0], router.rss())
        error = None
        try:
            results = run_nodes(self.nodes, timeout=seconds + 150, on_tick=sample,
                                tick=RSS_EVERY)
        except RuntimeError as e:
            error = str(e)
            results = [None] * m
        finally:
            peak[0] = max(peak[0], router.rss())
            self.stop_nodes()
        self.router_peak[mq] = max(self.router_peak.get(mq, 0), peak[0])
        result = measure(mq, rate, rep, self.nodes, results, peak[0], error)
        idle = self.router_idle.get(mq)
        result['router_idle_rss_mb'] = idle / 2 ** 20 if idle else None
        return result

    def stop_nodes(self):
        terminate([n.proc for n in self.nodes], grace=10)
        for n in self.nodes:
            n.close()

    # -- figures ---------------------------------------------------------------
    def table(self):
        """Per MQ and offered rate: medians over the repeats."""
        rows = []
        for rate in self.rates:
            for mq in self.mqs:
                runs = [r for r in self.runs if r['mq'] == mq and r['rate'] == rate]
                if not runs:
                    continue
                row = {'mq': mq, 'rate': rate, 'runs': len(runs),
                       'ok': all(r['ok'] for r in runs)}
                for k in ('throughput', 'latency_p50', 'latency_p99', 'latency_max',
                          'master_rss_mb', 'router_rss_mb'):
                    vals = [r[k] for r in runs if r[k] is not None]
                    row[k] = statistics.median(vals) if vals else None
                for k in ('lost', 'duplicated'):
                    row[k] = sum(r[k] for r in runs)
                row['same_order'] = all(r['same_order'] for r in runs)
                rows.append(row)
        return rows

    def ratios(self):
        if ORDERED not in self.mqs or STOCK not in self.mqs:
            return {}
        by = {(r['mq'], r['rate']): r for r in self.table()}

        def ratio(k, rate):
            o, s = by.get((ORDERED, rate)), by.get((STOCK, rate))
            if not o or not s or not o[k] or not s[k]:
                return None
            return o[k] / s[k]
        out = {'latency_p50': {}, 'latency_p99': {}, 'throughput': {}}
        for rate in self.rates:
            out['throughput'][str(rate)] = ratio('throughput', rate)
            if rate != FLAT_OUT:
                out['latency_p50'][str(rate)] = ratio('latency_p50', rate)
                out['latency_p99'][str(rate)] = ratio('latency_p99', rate)
        top = FLAT_OUT if FLAT_OUT in self.rates else max(self.rates)
        out['throughput_flat_out' if top == FLAT_OUT else 'throughput_top'] = \
            out['throughput'][str(top)]

        def peak(k):
            o = [r[k] for r in self.runs if r['mq'] == ORDERED and r[k]]
            s = [r[k] for r in self.runs if r['mq'] == STOCK and r[k]]
            return max(o) / max(s) if o and s else None
        out['master_rss'] = peak('master_rss_mb')
        out['router_rss'] = peak('router_rss_mb')
        return out

    def report(self):
        lines = ["results (medians over %d run%s per MQ and rate; msg/s = messages/s "
                 "each master delivered; latency = produce to deliver):"
                 % (self.args.repeat, '' if self.args.repeat == 1 else 's')]
        head = ('offered', 'MQ', 'msg/s', 'p50 ms', 'p99 ms', 'max ms',
                'master MB', 'router MB', 'lost', 'dup', 'order')
        rows = [head]
        for r in self.table():
            rows.append((rate_text(r['rate']), r['mq'], num(r['throughput']),
                         ms(r['latency_p50']), ms(r['latency_p99']), ms(r['latency_max']),
                         num(r['master_rss_mb']), num(r['router_rss_mb']),
                         str(r['lost']), str(r['duplicated']),
                         'same' if r['same_order'] else 'differs'))
        widths = [max(len(row[i]) for row in rows) for i in range(len(head))]
        for k, row in enumerate(rows):
            lines.append('  ' + '  '.join(
                c.ljust(w) if i < 2 else c.rjust(w)
                for i, (c, w) in enumerate(zip(row, widths))))
            if k == 0:
                lines.append('  ' + '  '.join('-' * w for w in widths))
        if self.router_idle:
            lines.append("  router MB: peak RSS of the router's process tree during the run; "
                         "idle after warm-up: " + ", ".join(
                             f"{mq} {num(v / 2 ** 20)} MB" for mq, v in self.router_idle.items()))
        ratios = self.ratios()
        if ratios:
            lines.append("")
            lines.append(f"ratio {ORDERED} / {STOCK} (throughput: higher is better; "
                         "latency and memory: lower is better):")
            for rate in self.rates:
                parts = [f"throughput {x_text(ratios['throughput'].get(str(rate)))}"]
                if rate != FLAT_OUT:
                    parts.append(f"latency p50 {x_text(ratios['latency_p50'][str(rate)])}")
                    parts.append(f"p99 {x_text(ratios['latency_p99'][str(rate)])}")
                lines.append(f"ratio at {rate_text(rate)}: " + ", ".join(parts))
            lines.append(f"ratio peak RSS: master {x_text(ratios['master_rss'])}, "
                         f"router {x_text(ratios['router_rss'])}")
        bad = [r for r in self.runs if not r['ok']]
        for r in bad:
            lines.append(f"problem: {r['mq']} at {rate_text(r['rate'])}: {r['problem']}")
        return lines

    def figures(self):
        a = self.args
        return {
            'command': ['buildbot-mq-ordered'] + sys.argv[1:],
            'config': {'masters': a.masters, 'rates': [str(r) for r in self.rates],
                       'duration': a.duration, 'messages': a.messages,
                       'payload': a.payload, 'distinct_keys': a.distinct_keys,
                       'window': a.window, 'repeat': a.repeat, 'mqs': self.mqs},
            'host': {'cpus': os.cpu_count(), 'python': platform.python_version(),
                     'platform': platform.platform()},
            'runs': self.runs,
            'table': [dict(r, rate=str(r['rate'])) for r in self.table()],
            'ratios': self.ratios(),
            'router_peak_rss_mb': {mq: v / 2 ** 20 for mq, v in self.router_peak.items()},
            'router_idle_rss_mb': {mq: v / 2 ** 20 for mq, v in self.router_idle.items()},
        }


def measure(mq, rate, rep, nodes, results, router_peak, error):
    good = [r for r in results if r is not None]
    produced = produced_counts(nodes, results)
    throughputs = []
    for r in good:
        elapsed = (r['last_at'] or 0) - (r['started_at'] or 0)
        if elapsed > 0:
            throughputs.append(r['summary']['delivered'] / elapsed)
    hist = merge_hists(r['summary']['latency_hist'] for r in good)
    verdict = check_summaries(produced, results)
    lost, dups, complete = verdict['lost'], verdict['duplicated'], verdict['complete']
    problem = error
    if problem is None and not complete:
        missing = [n.name for n, r in zip(nodes, results) if r is None]
        problem = (f"no result from {', '.join(missing)} (see their logs)" if missing
                   else "not every master delivered everything before the timeout")
    return {
        'mq': mq, 'rate': rate, 'repeat': rep,
        'offered': None if rate == FLAT_OUT else rate,
        'produced': sum(produced.values()), 'masters': len(nodes),
        'delivered': [r['summary']['delivered'] for r in good],
        'throughput': statistics.mean(throughputs) if throughputs else None,
        'throughput_min': min(throughputs) if throughputs else None,
        'latency_p50': hist_percentile(hist, 0.50),
        'latency_p99': hist_percentile(hist, 0.99),
        'latency_max': max((r['summary']['latency_max'] or 0 for r in good), default=None),
        'master_rss_mb': max((r['max_rss_kb'] / 1024 for r in good), default=None),
        'router_rss_mb': router_peak / 2 ** 20 if router_peak else None,
        'lost': lost, 'duplicated': dups,
        'same_order': verdict['same_order'], 'out_of_order': verdict['out_of_order'],
        'complete': complete, 'ok': complete and not lost and not dups and not error,
        'problem': problem,
    }


def describe(r):
    text = (f"{r['mq']:<12} {rate_text(r['rate']):>10}: {num(r['throughput'])} msg/s "
            f"per master, latency p50 {ms(r['latency_p50'])} p99 {ms(r['latency_p99'])} "
            f"max {ms(r['latency_max'])} ms, RSS master {num(r['master_rss_mb'])} MB "
            f"router {num(r['router_rss_mb'])} MB"
            + (f" (idle {num(r['router_idle_rss_mb'])})" if r.get('router_idle_rss_mb') else "")
            + f", lost {r['lost']}, dup "
            f"{r['duplicated']}, order {'same' if r['same_order'] else 'differs'}")
    if r['problem']:
        text += f"  [{r['problem']}]"
    return text


def rate_text(rate):
    return 'flat out' if rate == FLAT_OUT else f"{rate:g}/s"


def num(x):
    return '-' if x is None else f"{x:.0f}"


def ms(seconds):
    if seconds is None:
        return '-'
    v = seconds * 1000
    return f"{v:.1f}" if v < 100 else f"{v:.0f}"


def x_text(x):
    return '-' if x is None else f"{x:.2f}x"


def plot(bench, path):
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    colors = {ORDERED: 'tab:blue', STOCK: 'tab:orange'}
    fig, ax = plt.subplots(figsize=(7, 4.2), dpi=90)
    for mq in bench.mqs:
        rows = [r for r in bench.table() if r['mq'] == mq]
        fixed = [r for r in rows if r['rate'] != FLAT_OUT and r['latency_p50']]
        xs = [r['rate'] for r in fixed]
        ax.plot(xs, [r['latency_p50'] * 1000 for r in fixed], 'o--', color=colors[mq],
                label=f"{mq} p50")
        ax.plot(xs, [r['latency_p99'] * 1000 for r in fixed], 's-', color=colors[mq],
                label=f"{mq} p99")
        for r in rows:
            if r['rate'] == FLAT_OUT and r['throughput'] and r['latency_p50']:
                ax.plot([r['throughput']], [r['latency_p50'] * 1000], '*', markersize=12,
                        color=colors[mq], label=f"{mq} flat out (p50 at msg/s reached)")
    ax.set_xscale('log')
    ax.set_yscale('log')
    ax.set_xlabel("offered load, messages/s (all masters)")
    ax.set_ylabel("produce-to-deliver latency, ms")
    ax.set_title(f"{bench.args.masters} masters, {bench.args.payload} B payload")
    ax.grid(True, which='both', alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
