"""What the bench prints: a line per run as it ends, then the table of
medians and the ratios (figures from ``load/benchfigures.py``)."""

from buildbot_mq_ordered.load.benchfigures import FLAT_OUT
from buildbot_mq_ordered.load.benchfigures import STOCK
from buildbot_mq_ordered.load.texttable import aligned
from buildbot_mq_ordered.load.texttable import ms

HEAD = ('offered', 'MQ', 'msg/s', 'p50 ms', 'p99 ms', 'max ms',
        'master MB', 'router MB', 'lost', 'dup', 'order')


def describe(r):
    """One run (``benchfigures.measure``) in a line."""
    text = (f"{r['mq']:<15} {rate_text(r['rate']):>10}: {num(r['throughput'])} msg/s "
            f"per master, latency p50 {ms(r['latency_p50'])} p99 {ms(r['latency_p99'])} "
            f"max {ms(r['latency_max'])} ms, RSS master {num(r['master_rss_mb'])} MB "
            f"router {num(r['router_rss_mb'])} MB"
            + (f" (idle {num(r['router_idle_rss_mb'])})" if r.get('router_idle_rss_mb') else "")
            + f", lost {r['lost']}, dup "
            f"{r['duplicated']}, order {'same' if r['same_order'] else 'differs'}")
    if r['problem']:
        text += f"  [{r['problem']}]"
    return text


def report(rows, ratios, runs, rates, repeat, router_idle):
    """The final report: ``rows`` and ``ratios`` from ``benchfigures.table``
    and ``.all_ratios``, ``runs`` (their problems), ``router_idle`` {mq: bytes}."""
    lines = ["results (medians over %d run%s per MQ and rate; msg/s = messages/s "
             "each master delivered; latency = produce to deliver):"
             % (repeat, '' if repeat == 1 else 's')]
    cells = [(rate_text(r['rate']), r['mq'], num(r['throughput']),
              ms(r['latency_p50']), ms(r['latency_p99']), ms(r['latency_max']),
              num(r['master_rss_mb']), num(r['router_rss_mb']),
              str(r['lost']), str(r['duplicated']),
              'same' if r['same_order'] else 'differs') for r in rows]
    lines += ['  ' + line for line in aligned(HEAD, cells, left=2)]
    if router_idle:
        lines.append("  router MB: peak RSS of the router's process tree during the run; "
                     "idle after warm-up: " + ", ".join(
                         f"{mq} {num(v / 2 ** 20)} MB" for mq, v in router_idle.items()))
    for mq, x in ratios.items():
        if not x:
            continue
        lines.append("")
        lines.append(f"ratio {mq} / {STOCK} (throughput: higher is better; "
                     "latency and memory: lower is better):")
        for rate in rates:
            parts = [f"throughput {x_text(x['throughput'].get(str(rate)))}"]
            if rate != FLAT_OUT:
                parts.append(f"latency p50 {x_text(x['latency_p50'][str(rate)])}")
                parts.append(f"p99 {x_text(x['latency_p99'][str(rate)])}")
            lines.append(f"ratio at {rate_text(rate)}: " + ", ".join(parts))
        lines.append(f"ratio peak RSS: master {x_text(x['master_rss'])}, "
                     f"router {x_text(x['router_rss'])}")
    for r in runs:
        if not r['ok']:
            lines.append(f"problem: {r['mq']} at {rate_text(r['rate'])}: {r['problem']}")
    return lines


def rate_text(rate):
    return 'flat out' if rate == FLAT_OUT else f"{rate:g}/s"


def num(x):
    return '-' if x is None else f"{x:.0f}"


def x_text(x):
    return '-' if x is None else f"{x:.2f}x"
