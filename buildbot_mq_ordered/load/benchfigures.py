"""The bench's figures, from the load nodes' results: a run's measurement,
the medians per MQ and offered rate, and the ratios ordered-wamp / wamp.
Pure: results in, figures out."""

import statistics

from buildbot_mq_ordered.load.latency import hist_percentile
from buildbot_mq_ordered.load.latency import merge_hists
from buildbot_mq_ordered.load.verify import check_summaries

ORDERED = 'ordered-wamp'
# ordered-wamp with its journal on PostgreSQL (router --journal postgresql://...)
ORDERED_PG = 'ordered-wamp-pg'
STOCK = 'wamp'
FLAT_OUT = 'max'


def measure(mq, rate, rep, produced, results, router_peak, error):
    """One run's figures. ``produced``: {master: messages it produced}, in the
    order of ``results`` (its record, or None); ``router_peak``: bytes;
    ``error``: why the run failed, or None."""
    good = [r for r in results if r is not None]
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
        missing = [name for name, r in zip(produced, results) if r is None]
        problem = (f"no result from {', '.join(missing)} (see their logs)" if missing
                   else "not every master delivered everything before the timeout")
    return {
        'mq': mq, 'rate': rate, 'repeat': rep,
        'offered': None if rate == FLAT_OUT else rate,
        'produced': sum(produced.values()), 'masters': len(produced),
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


def table(runs, rates, mqs):
    """Per MQ and offered rate: medians over the repeats (sums for lost and
    duplicated; the same order only if every repeat had it)."""
    rows = []
    for rate in rates:
        for mq in mqs:
            these = [r for r in runs if r['mq'] == mq and r['rate'] == rate]
            if not these:
                continue
            row = {'mq': mq, 'rate': rate, 'runs': len(these),
                   'ok': all(r['ok'] for r in these)}
            for k in ('throughput', 'latency_p50', 'latency_p99', 'latency_max',
                      'master_rss_mb', 'router_rss_mb'):
                vals = [r[k] for r in these if r[k] is not None]
                row[k] = statistics.median(vals) if vals else None
            for k in ('lost', 'duplicated'):
                row[k] = sum(r[k] for r in these)
            row['same_order'] = all(r['same_order'] for r in these)
            rows.append(row)
    return rows


def all_ratios(runs, rates, mqs):
    """{mq: its ratios to wamp} for every other MQ that ran."""
    return {mq: ratios(runs, rates, mqs, mq) for mq in mqs
            if mq != STOCK and STOCK in mqs}


def ratios(runs, rates, mqs, mq=ORDERED):
    """mq / wamp: throughput and latency per rate (from the medians), peak
    RSS of a master and of the router (over all runs)."""
    if mq not in mqs or STOCK not in mqs:
        return {}
    by = {(r['mq'], r['rate']): r for r in table(runs, rates, mqs)}

    def ratio(k, rate):
        o, s = by.get((mq, rate)), by.get((STOCK, rate))
        if not o or not s or not o[k] or not s[k]:
            return None
        return o[k] / s[k]
    out = {'latency_p50': {}, 'latency_p99': {}, 'throughput': {}}
    for rate in rates:
        out['throughput'][str(rate)] = ratio('throughput', rate)
        if rate != FLAT_OUT:
            out['latency_p50'][str(rate)] = ratio('latency_p50', rate)
            out['latency_p99'][str(rate)] = ratio('latency_p99', rate)
    top = FLAT_OUT if FLAT_OUT in rates else max(rates)
    out['throughput_flat_out' if top == FLAT_OUT else 'throughput_top'] = \
        out['throughput'][str(top)]

    def peak(k):
        o = [r[k] for r in runs if r['mq'] == mq and r[k]]
        s = [r[k] for r in runs if r['mq'] == STOCK and r[k]]
        return max(o) / max(s) if o and s else None
    out['master_rss'] = peak('master_rss_mb')
    out['router_rss'] = peak('router_rss_mb')
    return out
