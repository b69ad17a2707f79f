"""What a load node delivered: counted and summarised in constant memory (a
``DeliveryTally``, a latency histogram) and, with ``--record``, every
delivery in order (producer and index, position, per-key number, latency)."""

import time

from buildbot_mq_ordered.load.latency import hist_percentile
from buildbot_mq_ordered.load.latency import lat_bucket
from buildbot_mq_ordered.load.verify import DeliveryTally


class Deliveries:
    """The load node's consumer callback (``add``) and what it learnt.
    ``delivery()`` gives the MQ's (pos, seq) of the message being delivered,
    or None (the stock MQ has none)."""

    def __init__(self, name, record, delivery):
        self.name = name
        self.record = record
        self._delivery = delivery
        self.delivered = []      # [producer, index] in delivery order (--record)
        self.positions = []      # stream positions (ordered-wamp, --record)
        self.seqs = []           # per-key sequence numbers (ordered-wamp, --record)
        self.latencies = []      # produce-to-deliver, seconds (--record)
        self.count = 0
        self.own = 0
        self.first_at = None
        self.last_at = None
        self._tally = DeliveryTally()
        self._hist = {}
        self._lat_max = 0.0
        self._lat_sum = 0.0

    def add(self, key, data):
        now = time.time()
        p, i = data['p'], data['i']
        lat = now - data['t']
        self.count += 1
        if self.first_at is None:
            self.first_at = now
        self.last_at = now
        if p == self.name:
            self.own += 1
        self._tally.add(p, i)
        b = lat_bucket(lat)
        self._hist[b] = self._hist.get(b, 0) + 1
        self._lat_sum += lat
        if lat > self._lat_max:
            self._lat_max = lat
        if self.record:
            self.delivered.append((p, i))
            self.latencies.append(lat)
            delivery = self._delivery()
            if delivery is not None:
                self.positions.append(delivery[0])
                self.seqs.append(delivery[1])
        return now

    def summary(self):
        n = self.count
        return {
            'delivered': n,
            **self._tally.summary(),
            'latency_hist': {str(b): c for b, c in self._hist.items()},
            'latency_p50': hist_percentile(self._hist, 0.50),
            'latency_p99': hist_percentile(self._hist, 0.99),
            'latency_max': self._lat_max if n else None,
            'latency_mean': self._lat_sum / n if n else None,
        }
