"""The load node's logic (see ``cli/node.py``): produce, consume, record."""

import json
import os
import time

from twisted.application import service as ts
from twisted.internet import defer
from twisted.internet import stdio
from twisted.internet import task
from twisted.protocols import basic
from twisted.python import log

import buildbot_mq_ordered  # noqa: F401  (registers ordered-wamp)

# flat out: produce this many per reactor turn, and pause while the
# outbox holds more than OUTBOX_HIGH (a load generator, not a flood)
CHUNK = 200
OUTBOX_HIGH = 20000
PROGRESS_EVERY = 0.5


class _Config:
    def __init__(self, mq):
        self.mq = mq


class _GoListener(basic.LineReceiver):
    delimiter = b'\n'

    def __init__(self, on_go):
        self.on_go = on_go

    def lineReceived(self, line):
        if line.strip() == b'GO':
            self.on_go()


class LoadNode:
    def __init__(self, args, reactor):
        self.args = args
        self.reactor = reactor
        self.exit_code = 1
        self.delivered = []      # [producer, index] in delivery order
        self.positions = []      # stream positions (ordered-wamp)
        self.latencies = []      # produce-to-deliver, seconds
        self.produced = 0
        self.started_at = None
        self.finished_at = None
        self._done = False
        self._payload = 'x' * max(0, args.payload)

    # -- setup -----------------------------------------------------------
    @defer.inlineCallbacks
    def start(self):
        try:
            self.mq = yield self._start_mq()
            yield self.mq.startConsuming(self._on_message, ('load', None, None))
        except Exception:
            log.err()
            self._finish(error=True)
            return
        self.reactor.callLater(self.args.timeout, self._finish)
        task.LoopingCall(self._progress).start(PROGRESS_EVERY, now=False)
        print('READY', flush=True)
        if self.args.no_wait:
            self._go()
        else:
            stdio.StandardIO(_GoListener(self._go))

    @defer.inlineCallbacks
    def _start_mq(self):
        a = self.args
        self.parent = ts.MultiService()
        if a.mq == 'ordered-wamp':
            from buildbot_mq_ordered.mq import OrderedWampMQ
            mq = OrderedWampMQ()
            cfg = _Config({'type': 'ordered-wamp', 'router_url': a.router_url,
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
        from buildbot.wamp.connector import WampConnector
        from buildbot.util import service

        class Master(service.MasterService):
            pass
        master = Master()
        master.config = _Config({'type': 'wamp', 'router_url': a.router_url,
                                 'realm': a.realm, 'wamp_debug_level': 'error'})
        master.wamp = WampConnector()
        yield master.wamp.setServiceParent(master)
        mq = WampMQ()
        yield mq.setServiceParent(master)
        yield master.setServiceParent(self.parent)
        yield master.wamp.reconfigServiceWithBuildbotConfig(master.config)
        return mq

    # -- produce -----------------------------------------------------------
    def _key(self, i):
        a = self.args
        if a.distinct_keys:
            return ('load', 'k%d' % ((i * 7919 + hash(a.name)) % a.distinct_keys), a.name)
        if a.shared_keys and i % 2 == 0:
            return ('load', 'shared-%d' % (i % a.shared_keys), 'any')
        return ('load', 'private', a.name)

    def _go(self):
        self.started_at = time.time()
        if self.args.rate > 0:
            self._ticker = task.LoopingCall(self._produce_tick)
            self._tick_len = 0.01
            self._ticker.start(self._tick_len, now=True)
        else:
            self._produce_flat_out()

    def _produce_one(self):
        i = self.produced
        self.mq.produce(self._key(i), {'p': self.args.name, 'i': i, 't': time.time(),
                                       'pad': self._payload})
        self.produced += 1

    def _produce_tick(self):
        # produce what the offered rate owes by now
        due = min(self.args.messages,
                  int((time.time() - self.started_at) * self.args.rate) + 1)
        while self.produced < due:
            self._produce_one()
        if self.produced >= self.args.messages:
            self._ticker.stop()

    def _produce_flat_out(self):
        outbox = getattr(self.mq, 'outbox', None)
        if outbox is None or len(outbox) < OUTBOX_HIGH:
            for _ in range(min(CHUNK, self.args.messages - self.produced)):
                self._produce_one()
        if self.produced < self.args.messages:
            self.reactor.callLater(0, self._produce_flat_out)

    # -- consume -----------------------------------------------------------
    def _on_message(self, key, data):
        now = time.time()
        self.delivered.append((data['p'], data['i']))
        self.latencies.append(now - data['t'])
        delivery = getattr(self.mq, 'delivery', None)
        if delivery is not None:
            self.positions.append(delivery[0])
        if len(self.delivered) >= self.args.expect and not self._done:
            self.finished_at = now
            self.reactor.callLater(0, self._finish)

    def _progress(self):
        print(f'PROGRESS {len(self.delivered)} {self.produced}', flush=True)

    # -- finish ------------------------------------------------------------
    @defer.inlineCallbacks
    def _finish(self, error=False):
        if self._done:
            return
        self._done = True
        self._progress()
        a = self.args
        result = {
            'name': a.name, 'mq': a.mq, 'produced': self.produced,
            'delivered': self.delivered, 'positions': self.positions,
            'latencies': self.latencies,
            'started_at': self.started_at, 'finished_at': self.finished_at,
            'complete': len(self.delivered) >= a.expect,
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
        self.exit_code = 0 if result['complete'] and not error else 1
        print('DONE', flush=True)
        self.reactor.stop()


def _max_rss_kb():
    import resource
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss

