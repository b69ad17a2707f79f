"""What the demo prints: a progress line per second while it runs, then the
verification table and what was checked (see docs/demo.rst)."""

import time

from buildbot_mq_ordered.load.driver import say
from buildbot_mq_ordered.load.latency import percentile
from buildbot_mq_ordered.load.texttable import aligned
from buildbot_mq_ordered.load.texttable import ms

HEAD = ('master', 'produced', 'delivered', 'lost', 'duplicated', 'order',
        'msg/s', 'p50 ms', 'p99 ms')


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


def table(verdict):
    """The verification table: a row per master (``load.verify.RunVerdict``)."""
    rows = []
    for m in verdict.masters:
        r = m.record
        if r is None:
            rows.append((m.name, verdict.produced[m.name]) + ('-',) * 7)
            continue
        elapsed = (r['last_at'] or 0) - (r['started_at'] or 0)
        rate = m.delivered / elapsed if elapsed > 0 else 0
        lat = r['latencies']
        rows.append((m.name, r['produced'], m.delivered, m.lost, m.duplicated,
                     'same' if m.same_order else 'DIFFERS', f"{rate:.0f}",
                     ms(percentile(lat, 0.50)), ms(percentile(lat, 0.99))))
    return aligned(HEAD, rows)


def summary(verdict):
    """What was checked and measured, then PASS or a FAIL line per problem."""
    lines = []
    good = [m.record for m in verdict.masters if m.record is not None]
    if verdict.same_everywhere and verdict.reference:
        first = verdict.first_position
        where = (f" (stream positions {first}..{first + verdict.reference - 1}, per-key "
                 f"sequence numbers 1, 2, 3, ... on {verdict.keys_checked} routing keys)"
                 if first else "")
        lines.append(f"order: all {len(verdict.masters)} masters delivered the same "
                     f"{verdict.reference} messages in the same order{where}")
    lat_all = [x for r in good for x in r['latencies']]
    span = [r for r in good if r['last_at'] and r['started_at']]
    if span:
        t0 = min(r['started_at'] for r in span)
        t1 = max(r['last_at'] for r in span)
        total = sum(verdict.produced.values())
        deliveries = sum(len(r['delivered']) for r in good)
        lines.append(
            f"throughput: {total} messages produced, {deliveries} deliveries in "
            f"{t1 - t0:.1f}s ({deliveries / max(t1 - t0, 1e-6):.0f} deliveries/s "
            f"in total); latency produce-to-deliver p50 "
            f"{ms(percentile(lat_all, 0.5))} ms, p99 {ms(percentile(lat_all, 0.99))}"
            f" ms, max {ms(max(lat_all))} ms")
    if verdict.passed:
        lines.append("PASS: every master delivered every message once, "
                     "all in the same order")
    else:
        lines += [f"FAIL: {p}" for p in verdict.problems]
    return lines
