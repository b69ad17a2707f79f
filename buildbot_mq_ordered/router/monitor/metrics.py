"""Prometheus metrics of the router (``router --metrics-port``).

Two kinds: what the monitor knows (``clusterview.ClusterView``'s status
dict) is turned into metric families at each scrape by ``StatusCollector``
(state mirrored from elsewhere, the way prometheus-client's custom
collectors are meant for); what only the sequencer sees as it happens - the
time a batch takes to commit and its size - goes into two histograms through
``observe_commit``, which the sequencer calls (it runs in the same router
worker process as the monitor that serves ``/metrics``).
"""

from prometheus_client import CollectorRegistry
from prometheus_client import Histogram
from prometheus_client.core import CounterMetricFamily
from prometheus_client.core import GaugeMetricFamily

NS = 'buildbot_mq_ordered'

# what /metrics serves: the histograms below and, while a monitor runs, its
# StatusCollector
REGISTRY = CollectorRegistry()

COMMIT_SECONDS = Histogram(
    f'{NS}_commit_seconds',
    "Time from receiving a submitted batch to its acknowledgement: numbering, "
    "journal write, publication",
    buckets=(.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5),
    registry=REGISTRY)
BATCH_SIZE = Histogram(
    f'{NS}_batch_size_messages', "Messages per submitted batch sequenced",
    buckets=(1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000),
    registry=REGISTRY)


def observe_commit(seconds, batch_size):
    """The sequencer committed a batch of batch_size messages in seconds."""
    COMMIT_SECONDS.observe(seconds)
    BATCH_SIZE.observe(batch_size)


# (metric suffix, status key, help) of the router-wide gauges
ROUTER_GAUGES = (
    ('stream_head', 'head', "Stream position of the last sequenced message"),
    ('stream_first_position', 'first_pos', "Oldest stream position the journal retains"),
    ('term', 'term', "The leader's term (high availability)"),
    ('journal_rows', 'journal_rows', "Messages in the sequencer's journal"),
    ('journal_bytes', 'journal_bytes', "Size of the sequencer's journal"),
    ('stream_messages_per_second', 'rate', "Messages sequenced per second over the "
                                           "last minute"),
)
# per master (label master): gauges, then counters (their _total added by the family)
MASTER_GAUGES = (
    ('master_delivered_position', 'delivered_pos',
     "Highest stream position the master delivered, as of its last report"),
    ('master_lag', 'lag', "Positions sequenced that the master had not delivered"),
    ('master_outbox_messages', 'outbox', "Messages produced by the master, not yet "
                                         "acknowledged by the sequencer"),
    ('master_buffer_messages', 'buffer', "Messages held in the master's reorder buffer"),
    ('master_report_age_seconds', 'age', "Seconds since the master's last report"),
    ('master_stale', 'stale', "1 if the master has not reported for too long"),
)
MASTER_COUNTERS = (
    ('master_skipped_messages', 'skipped', "Stream positions the master skipped (lost)"),
    ('master_replayed_messages', 'replayed', "Messages the master received by replay"),
    ('master_reconnects', 'reconnects', "Times the master joined the router again"),
)


class StatusCollector:
    """Metric families from ``status()`` (a ClusterView status dict), read
    at each scrape."""

    def __init__(self, status):
        self.status = status

    def collect(self):
        s = self.status()
        for suffix, key, text in ROUTER_GAUGES:
            if s.get(key) is not None:
                yield GaugeMetricFamily(f'{NS}_{suffix}', text, value=s[key])
        yield GaugeMetricFamily(f'{NS}_leader', "1 if this router's sequencer leads",
                                value=1 if s['sequencer'] == 'leading' else 0)
        yield GaugeMetricFamily(f'{NS}_sequencer_up', "1 if a sequencer answers on "
                                "this router", value=0 if s['sequencer'] is None else 1)
        yield CounterMetricFamily(f'{NS}_submitted_messages',
                                  "Messages sequenced since this router started",
                                  value=s['sequenced_total'])
        yield GaugeMetricFamily(f'{NS}_masters', "Masters known to the monitor",
                                value=len(s['masters']))
        for families, kind in ((MASTER_GAUGES, GaugeMetricFamily),
                               (MASTER_COUNTERS, CounterMetricFamily)):
            for suffix, key, text in families:
                family = kind(f'{NS}_{suffix}', text, labels=['master'])
                for m in s['masters']:
                    if m.get(key) is not None:
                        family.add_metric([m['master']], float(m[key]))
                yield family
