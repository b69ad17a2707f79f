"""The load node (its process: ``cli/node.py``): a stand-in master that
produces, consumes and records.

Production modes (``load/production.py``):

- ``--rate R``: offer R messages/s (steady, what a 10 ms tick owes), until
  ``--messages`` are produced or ``--duration`` seconds passed;
- ``--rate 0``: flat out, closed loop: at most ``--window`` of this node's
  own messages in flight (produced, not yet delivered back here), so the
  node measures what the MQ sustains instead of flooding buffers.

What it delivered is summarised in constant memory (``load/deliveries.py``:
a ``DeliveryTally``, see ``load/verify.py``, and a latency histogram); with
``--record`` (the default) the full lists are written too.
"""

import gc
import json
import os
import time

from twisted.internet import defer
from twisted.internet import stdio
from twisted.internet import task
from twisted.protocols import basic
from twisted.python import log

import buildbot_mq_ordered.master  # noqa: F401  (autobahn without bjdata, for both MQs)
from buildbot_mq_ordered.load.deliveries import Deliveries
from buildbot_mq_ordered.load.loadmq import start_mq
from buildbot_mq_ordered.load.production import Production

PROGRESS_EVERY = 0.5


class _Control(basic.LineReceiver):
    """Commands on stdin: ``GO``, ``EXPECT <n>``. EOF: the driver is gone."""
    delimiter = b'\n'

    def __init__(self, node):
        self.node = node

    def lineReceived(self, line):
        words = line.split()
        if words == [b'GO']:
            self.node.go()
        elif len(words) == 2 and words[0] == b'EXPECT':
            self.node.set_expect(int(words[1]))

    def connectionLost(self, reason):
        self.node.driver_gone()


class LoadNode:
    """One load node's run: starts its MQ, waits for ``GO`` (stdin), has
    ``Production`` produce and ``Deliveries`` record, prints its progress,
    and at the end (``--expect`` delivered, or ``--timeout``) writes its
    results to ``--out`` and stops the reactor. ``cli/node.py`` runs it."""

    def __init__(self, args, reactor):
        self.args = args
        self.reactor = reactor
        self.exit_code = 1
        self.expect = args.expect          # 0: told later (EXPECT on stdin)
        self.finished_at = None
        self.mq = self.parent = self.production = None
        self.deliveries = Deliveries(args.name, not getattr(args, 'no_record', False),
                                     lambda: getattr(self.mq, 'delivery', None))
        self._done = False

    # -- setup -----------------------------------------------------------
    @defer.inlineCallbacks
    def start(self):
        try:
            self.parent, self.mq = yield start_mq(self.args, self._mq_lost)
            qref = yield self.mq.startConsuming(self._on_message, ('load', None, None))
            if self.args.mq == 'wamp':
                yield self._stock_subscribed(qref)
        except Exception:
            log.err()
            self._finish(error=True)
            return
        self.production = Production(self.args, self.mq, self.reactor,
                                     lambda: self.deliveries.own, self._produced)
        self.reactor.callLater(self.args.timeout, self._finish)
        task.LoopingCall(self._progress).start(PROGRESS_EVERY, now=False)
        # what start-up allocated (Buildbot, Twisted, autobahn: ~1M objects)
        # stays: keep it out of the collector's way, or the first full
        # collection during the run pauses this master for tens of ms
        gc.collect()
        gc.freeze()
        print('READY', flush=True)
        if self.args.no_wait:
            self.go()
        else:
            stdio.StandardIO(_Control(self))

    @defer.inlineCallbacks
    def _stock_subscribed(self, qref):
        # stock wamp subscribes in the background, with nothing to wait on:
        # look until it is effective (bounded)
        deadline = time.monotonic() + self.args.timeout
        while getattr(qref, 'unreg', None) is None:
            if time.monotonic() > deadline:
                raise RuntimeError("stock wamp subscription not effective")
            yield task.deferLater(self.reactor, 0.05, lambda: None)

    def _mq_lost(self):
        if not self._done:
            log.msg("load node: stock wamp master stopped (connection lost?)")
            self.reactor.callLater(0, self._finish, True)

    # -- the run -----------------------------------------------------------
    def go(self):
        if self.production is not None and self.production.started_at is None:
            self.production.go()

    def _produced(self):
        print(f'PRODUCED {self.production.produced}', flush=True)

    def _on_message(self, key, data):
        now = self.deliveries.add(key, data)
        if self.expect and self.deliveries.count >= self.expect and not self._done:
            self.finished_at = now
            self.reactor.callLater(0, self._finish)

    def set_expect(self, n):
        self.expect = n
        if self.deliveries.count >= n and not self._done:
            self.finished_at = self.deliveries.last_at
            self.reactor.callLater(0, self._finish)

    def _progress(self):
        produced = self.production.produced if self.production else 0
        print(f'PROGRESS {self.deliveries.count} {produced}', flush=True)

    def driver_gone(self):
        # stdin closed: whoever started this node is gone; do not linger
        if not self._done:
            log.msg("load node: stdin closed; stopping")
            self._done = True
            self.exit_code = 2
            if self.reactor.running:
                self.reactor.stop()

    # -- finish ------------------------------------------------------------
    def result(self, error):
        a, d, p = self.args, self.deliveries, self.production
        return {
            'name': a.name, 'mq': a.mq, 'produced': p.produced if p else 0,
            'expect': self.expect,
            'delivered': d.delivered, 'positions': d.positions,
            'seqs': d.seqs, 'latencies': d.latencies,
            'started_at': p.started_at if p else None, 'first_at': d.first_at,
            'finished_at': self.finished_at, 'last_at': d.last_at,
            'complete': bool(self.expect) and d.count >= self.expect,
            'error': bool(error),
            'summary': d.summary(),
            'stats': dict(getattr(self.mq, 'stats', {})),
            'max_rss_kb': _max_rss_kb(),
        }

    @defer.inlineCallbacks
    def _finish(self, error=False):
        if self._done:
            return
        self._done = True
        if self.production is not None:
            self.production.stop()
        self._progress()
        result = self.result(error)
        try:
            if self.parent is not None:
                yield defer.maybeDeferred(self.parent.stopService)
        except Exception:
            log.err()
        tmp = self.args.out + '.tmp'
        with open(tmp, 'w') as f:
            json.dump(result, f)
        os.replace(tmp, self.args.out)
        self.exit_code = 0 if result['complete'] and not error else 1
        print('DONE', flush=True)
        if self.reactor.running:
            self.reactor.stop()


def _max_rss_kb():
    import resource
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
