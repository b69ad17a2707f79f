"""What a load node produces, and when: ``--rate R`` offers R messages/s
(what each 10 ms tick owes), ``--rate 0`` produces flat out with at most
``--window`` of its own messages in flight (produced, not yet delivered
back to it), until ``--messages`` are produced or ``--duration`` passed."""

import time

from twisted.internet import task

from buildbot_mq_ordered.load.workload import routing_key

# flat out: produce at most this many per reactor turn
CHUNK = 200
TICK = 0.01


class Production:
    """Produces a load node's messages on ``mq``; ``own_delivered()`` tells
    how many came back (the flat-out window), ``finished()`` is called once
    production is over. The node calls ``go()`` and ``stop()``."""

    def __init__(self, args, mq, reactor, own_delivered, finished):
        self.args = args
        self.mq = mq
        self.reactor = reactor
        self._own_delivered = own_delivered
        self._finished = finished
        self._payload = 'x' * max(0, args.payload)
        self.produced = 0
        self.started_at = None
        self.over = False
        self._stopped = False
        self._ticker = None
        self._t0 = None

    def go(self):
        self.started_at = time.time()
        self._t0 = time.monotonic()
        if self.args.rate > 0:
            self._ticker = task.LoopingCall(self._tick)
            self._ticker.clock = self.reactor
            self._ticker.start(TICK, now=True)
        else:
            self._flat_out()

    def stop(self):
        self._stopped = True
        if self._ticker is not None and self._ticker.running:
            self._ticker.stop()

    def _key(self, i):
        a = self.args
        return routing_key(a.name, i, a.shared_keys, a.distinct_keys,
                           getattr(a, 'index', 0), getattr(a, 'nodes', 1))

    def _done_producing(self):
        a = self.args
        if self.produced >= a.messages:
            return True
        duration = getattr(a, 'duration', 0)
        return bool(duration) and time.monotonic() - self._t0 >= duration

    def _end(self):
        if not self.over:
            self.over = True
            self._finished()

    def _produce_one(self):
        i = self.produced
        self.mq.produce(self._key(i), {'p': self.args.name, 'i': i, 't': time.time(),
                                       'pad': self._payload})
        self.produced += 1

    def _tick(self):
        if self._stopped or self._done_producing():
            self._ticker.stop()
            if not self._stopped:
                self._end()
            return
        # produce what the offered rate owes by now
        due = min(self.args.messages,
                  int((time.monotonic() - self._t0) * self.args.rate) + 1)
        while self.produced < due:
            self._produce_one()

    def _flat_out(self):
        if self._stopped:
            return
        if self._done_producing():
            self._end()
            return
        room = self.args.window - (self.produced - self._own_delivered())
        n = min(CHUNK, room, self.args.messages - self.produced)
        for _ in range(max(0, n)):
            self._produce_one()
        # window full: wait for own messages to come back (bounded poll)
        self.reactor.callLater(0 if n > 0 else 0.001, self._flat_out)
