"""The load node (its process: ``cli/node.py``): a stand-in master that
produces, consumes and records.

Production modes:

- ``--rate R``: offer R messages/s (steady, what a 10 ms tick owes), until
  ``--messages`` are produced or ``--duration`` seconds passed;
- ``--rate 0``: flat out, closed loop: at most ``--window`` of this node's
  own messages in flight (produced, not yet delivered back here), so the
  node measures what the MQ sustains instead of flooding buffers.

What it delivered is summarised in constant memory (a ``DeliveryTally``,
see ``load/verify.py``, and a latency histogram); with ``--record`` (the
default) the full lists are written too.
"""

import gc
import json
import os
import time
import zlib

from twisted.application import service as ts
from twisted.internet import defer
from twisted.internet import stdio
from twisted.internet import task
from twisted.protocols import basic
from twisted.python import log

from buildbot_mq_ordered.load.latency import hist_percentile
from buildbot_mq_ordered.load.latency import lat_bucket
from buildbot_mq_ordered.load.verify import DeliveryTally
from buildbot_mq_ordered.load.workload import routing_key
import buildbot_mq_ordered.master  # noqa: F401  (autobahn without bjdata, for both MQs)

# flat out: produce at most this many per reactor turn
CHUNK = 200
PROGRESS_EVERY = 0.5
TICK = 0.01


class _Config:
    def __init__(self, mq):
        self.mq = mq


class _Control(basic.LineReceiver):
    """Commands on stdin: ``GO``, ``EXPECT <n>``. EOF: the driver is gone."""
    delimiter = b'\n'

    def __init__(self, node):
        self.node = node

    def lineReceived(self, line):
        words = line.split()
        if words == [b'GO']:
            self.node._go()
        elif len(words) == 2 and words[0] == b'EXPECT':
            self.node.set_expect(int(words[1]))

    def connectionLost(self, reason):
        self.node._driver_gone()


class LoadNode:
    def __init__(self, args, reactor):
        self.args = args
        self.reactor = reactor
        self.exit_code = 1
        self.record = not getattr(args, 'no_record', False)
        self.expect = args.expect          # 0: told later (EXPECT on stdin)
        self.delivered = []      # [producer, index] in delivery order (--record)
        self.positions = []      # stream positions (ordered-wamp, --record)
        self.seqs = []           # per-key sequence numbers (ordered-wamp, --record)
        self.latencies = []      # produce-to-deliver, seconds (--record)
        self.n_delivered = 0
        self.own_delivered = 0
        self.produced = 0
        self.production_done = False
        self.started_at = None
        self.first_at = None
        self.finished_at = None
        self.last_at = None
        self._done = False
        self._going = False
        self._tally = DeliveryTally()
        self._hist = {}
        self._lat_max = 0.0
        self._lat_sum = 0.0
        self._payload = 'x' * max(0, args.payload)
        self._ticker = None

    # -- setup -----------------------------------------------------------
    @defer.inlineCallbacks
    def start(self):
        try:
            self.mq = yield self._start_mq()
            qref = yield self.mq.startConsuming(self._on_message, ('load', None, None))
            if self.args.mq == 'wamp':
                # stock wamp subscribes in the background: wait until it is effective
                deadline = time.monotonic() + self.args.timeout
                while getattr(qref, 'unreg', None) is None:
                    if time.monotonic() > deadline:
                        raise RuntimeError("stock wamp subscription not effective")
                    yield task.deferLater(self.reactor, 0.05, lambda: None)
        except Exception:
            log.err()
            self._finish(error=True)
            return
        self.reactor.callLater(self.args.timeout, self._finish)
        task.LoopingCall(self._progress).start(PROGRESS_EVERY, now=False)
        # what start-up allocated (Buildbot, Twisted, autobahn: ~1M objects)
        # stays: keep it out of the collector's way, or the first full
        # collection during the run pauses this master for tens of ms
        gc.collect()
        gc.freeze()
        print('READY', flush=True)
        if self.args.no_wait:
            self._go()
        else:
            stdio.StandardIO(_Control(self))

    @defer.inlineCallbacks
    def _start_mq(self):
        a = self.args
        self.parent = ts.MultiService()
        if a.mq == 'ordered-wamp':
            from buildbot_mq_ordered.master.mq import OrderedWampMQ
            mq = OrderedWampMQ()
            mq.setName(a.name)   # the name its reports give (no Buildbot master here)
            urls = a.router_url.split(',')
            cfg = _Config({'type': 'ordered-wamp',
                           'router_url': urls[0] if len(urls) == 1 else urls,
                           'realm': a.realm, 'initial_retry_delay': 0.2,
                           'max_retry_delay': 2.0, 'shutdown_timeout': 30})
            yield mq.setServiceParent(self.parent)
            yield mq.reconfigServiceWithBuildbotConfig(cfg)
        else:
            mq = yield self._start_stock_wamp(a)
        yield defer.maybeDeferred(self.parent.startService)
        return mq

    @defer.inlineCallbacks
    def _start_stock_wamp(self, a):
        # Buildbot's own WampMQ with its own WampConnector, as in a master
        from buildbot.mq.wamp import WampMQ
        from buildbot.util import service
        from buildbot.wamp.connector import WampConnector

        node = self

        class Master(service.MasterService):
            masterid = zlib.crc32(a.name.encode())  # the connector publishes with it

            def stopService(self):
                # the connector calls this on a lost router connection
                # ("Guru meditation"): end the run instead of hanging
                if not node._done:
                    log.msg("load node: stock wamp master stopped (connection lost?)")
                    node.reactor.callLater(0, node._finish, True)
                return super().stopService()

        master = Master()
        master.config = _Config({'type': 'wamp', 'router_url': a.router_url,
                                 'realm': a.realm, 'wamp_debug_level': 'error'})
        master.wamp = WampConnector()
        yield master.wamp.setServiceParent(master)
        mq = WampMQ()
        yield mq.setServiceParent(master)
        yield master.setServiceParent(self.parent)
        yield master.wamp.reconfigServiceWithBuildbotConfig(master.config)
        self._stock_master = master
        return mq

    # -- produce -----------------------------------------------------------
    def _key(self, i):
        a = self.args
        return routing_key(a.name, i, a.shared_keys, a.distinct_keys,
                           getattr(a, 'index', 0), getattr(a, 'nodes', 1))

    def _go(self):
        if self._going:
            return
        self._going = True
        self.started_at = time.time()
        self._t0 = time.monotonic()
        if self.args.rate > 0:
            self._ticker = task.LoopingCall(self._produce_tick)
            self._ticker.start(TICK, now=True)
        else:
            self._produce_flat_out()

    def _production_over(self):
        a = self.args
        if self.produced >= a.messages:
            return True
        duration = getattr(a, 'duration', 0)
        return bool(duration) and time.monotonic() - self._t0 >= duration

    def _production_finished(self):
        if self.production_done:
            return
        self.production_done = True
        print(f'PRODUCED {self.produced}', flush=True)

    def _produce_one(self):
        i = self.produced
        self.mq.produce(self._key(i), {'p': self.args.name, 'i': i, 't': time.time(),
                                       'pad': self._payload})
        self.produced += 1

    def _produce_tick(self):
        if self._done:
            self._ticker.stop()
            return
        if self._production_over():
            self._ticker.stop()
            self._production_finished()
            return
        # produce what the offered rate owes by now
        due = min(self.args.messages,
                  int((time.monotonic() - self._t0) * self.args.rate) + 1)
        while self.produced < due:
            self._produce_one()

    def _produce_flat_out(self):
        if self._done:
            return
        if self._production_over():
            self._production_finished()
            return
        room = self.args.window - (self.produced - self.own_delivered)
        n = min(CHUNK, room, self.args.messages - self.produced)
        for _ in range(max(0, n)):
            self._produce_one()
        if n > 0:
            self.reactor.callLater(0, self._produce_flat_out)
        else:
            # window full: wait for own messages to come back (bounded poll)
            self.reactor.callLater(0.001, self._produce_flat_out)

    # -- consume -----------------------------------------------------------
    def _on_message(self, key, data):
        now = time.time()
        p, i = data['p'], data['i']
        lat = now - data['t']
        self.n_delivered += 1
        if self.first_at is None:
            self.first_at = now
        self.last_at = now
        if p == self.args.name:
            self.own_delivered += 1
        self._tally.add(p, i)
        b = lat_bucket(lat)
        self._hist[b] = self._hist.get(b, 0) + 1
        self._lat_sum += lat
        if lat > self._lat_max:
            self._lat_max = lat
        if self.record:
            self.delivered.append((p, i))
            self.latencies.append(lat)
            delivery = getattr(self.mq, 'delivery', None)
            if delivery is not None:
                self.positions.append(delivery[0])
                self.seqs.append(delivery[1])
        if self.expect and self.n_delivered >= self.expect and not self._done:
            self.finished_at = now
            self.reactor.callLater(0, self._finish)

    def set_expect(self, n):
        self.expect = n
        if self.n_delivered >= n and not self._done:
            self.finished_at = self.last_at
            self.reactor.callLater(0, self._finish)

    def _progress(self):
        print(f'PROGRESS {self.n_delivered} {self.produced}', flush=True)

    def _driver_gone(self):
        # stdin closed: whoever started this node is gone; do not linger
        if not self._done:
            log.msg("load node: stdin closed; stopping")
            self._done = True
            self.exit_code = 2
            if self.reactor.running:
                self.reactor.stop()

    # -- finish ------------------------------------------------------------
    def summary(self):
        n = self.n_delivered
        return {
            'delivered': n,
            **self._tally.summary(),
            'latency_hist': {str(b): c for b, c in self._hist.items()},
            'latency_p50': hist_percentile(self._hist, 0.50),
            'latency_p99': hist_percentile(self._hist, 0.99),
            'latency_max': self._lat_max if n else None,
            'latency_mean': self._lat_sum / n if n else None,
        }

    @defer.inlineCallbacks
    def _finish(self, error=False):
        if self._done:
            return
        self._done = True
        self._progress()
        a = self.args
        complete = bool(self.expect) and self.n_delivered >= self.expect
        result = {
            'name': a.name, 'mq': a.mq, 'produced': self.produced,
            'expect': self.expect,
            'delivered': self.delivered, 'positions': self.positions,
            'seqs': self.seqs, 'latencies': self.latencies,
            'started_at': self.started_at, 'first_at': self.first_at,
            'finished_at': self.finished_at, 'last_at': self.last_at,
            'complete': complete, 'error': bool(error),
            'summary': self.summary(),
            'stats': dict(getattr(self.mq, 'stats', {})) if hasattr(self, 'mq') else {},
            'max_rss_kb': _max_rss_kb(),
        }
        try:
            if hasattr(self, 'parent'):
                yield defer.maybeDeferred(self.parent.stopService)
        except Exception:
            log.err()
        tmp = a.out + '.tmp'
        with open(tmp, 'w') as f:
            json.dump(result, f)
        os.replace(tmp, a.out)
        self.exit_code = 0 if complete and not error else 1
        print('DONE', flush=True)
        if self.reactor.running:
            self.reactor.stop()


def _max_rss_kb():
    import resource
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
