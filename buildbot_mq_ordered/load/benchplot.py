"""The bench's plot: latency against offered rate per MQ, and where flat
out ended (needs matplotlib, ``buildbot-mq-ordered[bench]``)."""

from buildbot_mq_ordered.load.benchfigures import FLAT_OUT
from buildbot_mq_ordered.load.benchfigures import ORDERED
from buildbot_mq_ordered.load.benchfigures import ORDERED_PG
from buildbot_mq_ordered.load.benchfigures import STOCK


def plot(rows, mqs, title, path):
    """``rows``: ``benchfigures.table``; ``title``: what ran (masters, payload)."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    colors = {ORDERED: 'tab:blue', ORDERED_PG: 'tab:green', STOCK: 'tab:orange'}
    fig, ax = plt.subplots(figsize=(7, 4.2), dpi=90)
    for mq in mqs:
        mine = [r for r in rows if r['mq'] == mq]
        fixed = [r for r in mine if r['rate'] != FLAT_OUT and r['latency_p50']]
        xs = [r['rate'] for r in fixed]
        ax.plot(xs, [r['latency_p50'] * 1000 for r in fixed], 'o--', color=colors[mq],
                label=f"{mq} p50")
        ax.plot(xs, [r['latency_p99'] * 1000 for r in fixed], 's-', color=colors[mq],
                label=f"{mq} p99")
        for r in mine:
            if r['rate'] == FLAT_OUT and r['throughput'] and r['latency_p50']:
                ax.plot([r['throughput']], [r['latency_p50'] * 1000], '*', markersize=12,
                        color=colors[mq], label=f"{mq} flat out (p50 at msg/s reached)")
    ax.set_xscale('log')
    ax.set_yscale('log')
    ax.set_xlabel("offered load, messages/s (all masters)")
    ax.set_ylabel("produce-to-deliver latency, ms")
    ax.set_title(title)
    ax.grid(True, which='both', alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
