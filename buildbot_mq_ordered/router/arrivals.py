"""Submits numbered in the order they arrived, none before the newest
number of each of its keys is known. Pure: the lookup is handed in (the
sequencing runs it off the reactor, journal/reader.py).

A key in the numbering's cache or in a batch not yet committed is known
at once: such a submit, with none waiting before it, is numbered in the
call that brought it. A submit with another key waits while the keys
missing from every waiting submit are looked up, in one query, and the
submits that come after it wait behind it, in order: a master's batches
must be numbered in the order it sent them (the later one's mark would
drop the earlier one as a resubmission). A stalled database holds up those
submits, never the router. A number looked up is used once: the submit
numbered with it leaves the key's newest number in the cache and in a
batch not yet committed.
"""

from collections import deque

from autobahn.wamp.exception import ApplicationError
from twisted.internet import defer

from buildbot_mq_ordered import wire

# submits waiting for a lookup, at most (a master has one in flight): more
# are refused, to be tried again later
MAX_WAITING = 1000


class Arrivals:
    """Owns the submits waiting to be numbered, in arrival order, the lookup
    under way and the numbers it found. The sequencing asks ``admit(keys)``
    with the call that numbers each submit, asks ``take(key)``
    for a key its numbering does not know, ``fail``s what waits when its
    router steps down, and ``stop``s it."""

    def __init__(self, knows, look_up, max_waiting=MAX_WAITING):
        """``knows(key)``: whether its newest number needs no lookup;
        ``look_up(keys)``: a Deferred of {key: its newest number in the
        journal}."""
        self._knows = knows
        self._look_up = look_up
        self.max_waiting = max_waiting
        self.found = {}            # looked up for a waiting submit, not used yet
        self._waiting = deque()    # (keys, number, deferred), in arrival order
        self._lookup = None        # the lookup under way (a Deferred)
        self._round = 0            # a lookup's answer counts in its round only
        self._going = False        # _go_on's loop runs
        self.stopped = False

    @property
    def waiting(self):
        return len(self._waiting)

    def admit(self, keys, number):
        """``number()`` (a submit with these keys) once it may run: every key
        known, every submit that came before numbered; at once if it may
        now. A Deferred of its result."""
        if self.stopped:
            return defer.fail(ApplicationError(wire.JOURNAL_ERROR, "the router is stopping"))
        if not self._waiting and not self._missing(keys):
            return defer.maybeDeferred(number)
        if len(self._waiting) >= self.max_waiting:
            return defer.fail(ApplicationError(
                wire.BUSY, "too many submits wait for their keys to be looked up; retry later"))
        d = defer.Deferred()
        self._waiting.append((keys, number, d))
        self._go_on()
        return d

    def take(self, key):
        """The number looked up for key, once; None if there is none."""
        return self.found.pop(key, None)

    def fail(self, error):
        """Fail every waiting submit with error (an exception); the lookup
        under way, if any, is forgotten (its answer will count for nothing)."""
        self._round += 1
        self._lookup = None
        self.found.clear()
        waiting, self._waiting = self._waiting, deque()
        for *_, d in waiting:
            d.errback(error)

    def stop(self):
        self.stopped = True
        self.fail(ApplicationError(wire.JOURNAL_ERROR, "the router is stopping"))

    def _missing(self, keys):
        return [k for k in keys if k not in self.found and not self._knows(k)]

    def _go_on(self):
        """Number the waiting submits in order while their keys are known;
        look up what the first one misses (with every other one's)."""
        if self._going:
            return     # answered in place: the loop below goes on
        self._going = True
        try:
            while self._waiting and self._lookup is None:
                keys, number, d = self._waiting[0]
                if self._missing(keys):
                    self._start_lookup()
                    continue
                self._waiting.popleft()
                # numbered now, before the next one
                defer.maybeDeferred(number).chainDeferred(d)
            if not self._waiting:
                self.found.clear()
        finally:
            self._going = False

    def _start_lookup(self):
        missing = list(dict.fromkeys(
            k for keys, *_ in self._waiting for k in self._missing(keys)))
        this = self._round
        self._lookup = d = defer.maybeDeferred(self._look_up, missing)
        d.addCallback(self._answered, this, missing)
        d.addErrback(self._failed, this)

    def _answered(self, seqs, this, asked):
        if this != self._round:
            return
        if any(k not in seqs for k in asked):
            # (else the same lookup again, for ever)
            raise RuntimeError("a key lookup answered without every key asked")
        self._lookup = None
        self.found.update(seqs)
        self._go_on()

    def _failed(self, failure, this):
        if this != self._round:
            return
        self.fail(ApplicationError(
            wire.JOURNAL_ERROR,
            f"looking keys up in the journal failed: {wire.shown(failure.getErrorMessage())}"))
