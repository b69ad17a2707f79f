"""Delayed calls that their owner cancels together when it stops."""

from twisted.internet import reactor


class Timers:
    """``later(delay, f)``: a delayed call on ``clock`` (the reactor unless a
    test's), cancelled by ``cancel()`` if still pending, or alone by
    ``cancel_one(call)``. The MQ's (replay retries of its ``StreamReader``)
    and the ``Submitter``'s (submit retries), cancelled when the MQ stops."""

    def __init__(self, clock=None):
        self.clock = clock or reactor
        self._calls = set()

    def later(self, delay, f):
        call = self.clock.callLater(delay, lambda: (self._calls.discard(call), f()))
        self._calls.add(call)
        return call

    def cancel_one(self, call):
        self._calls.discard(call)
        if call.active():
            call.cancel()

    def cancel(self):
        for call in list(self._calls):
            if call.active():
                call.cancel()
        self._calls.clear()
