"""Produce-to-deliver latency: a histogram of logarithmic buckets (constant
memory per master, however long the run: the load node and the bench) and
exact quantiles of a list (the demo, which records every latency)."""

import math

# bucket i holds latencies around LAT_MIN * exp(i / LAT_STEPS)
LAT_MIN = 1e-5
LAT_STEPS = 40      # 2.5 % resolution


def lat_bucket(seconds):
    if seconds <= LAT_MIN:
        return 0
    return int(math.log(seconds / LAT_MIN) * LAT_STEPS)


def bucket_value(b):
    return LAT_MIN * math.exp((b + 0.5) / LAT_STEPS)


def hist_percentile(hist, q):
    """Latency (seconds) at quantile q of a {bucket: count} histogram."""
    total = sum(hist.values())
    if not total:
        return None
    need = q * total
    seen = 0
    for b in sorted(hist):
        seen += hist[b]
        if seen >= need:
            return bucket_value(b)
    return bucket_value(max(hist))


def merge_hists(hists):
    """One histogram of several (bucket keys may be JSON's strings)."""
    out = {}
    for h in hists:
        for b, n in h.items():
            out[int(b)] = out.get(int(b), 0) + n
    return out


def percentile(values, q):
    """The value at quantile q of a list (None if empty)."""
    if not values:
        return None
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))]
