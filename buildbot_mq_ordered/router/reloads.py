"""When the journal writer reads the journal again, and who hears it. Pure:
the clock is handed in.

A load is wanted after a failed commit or a step-down, and asked for by a
new leader (``ask``). Whoever asked is answered by the next load to
*start*: one already under way may have read the journal before this
router's last commits ended (issue 21: a step-down's load answered a new
lead's request, and the numbering was replaced under batches numbered
meanwhile).

A failed commit makes the writer read the journal again before it takes
batches. With a journal that keeps refusing writes (a full disk, a server
away) every retry cost a commit and a load: issue 21 saw a load per
refused batch. So loads after failures are paced (``ReloadPace``); a load
asked for never waits for the pace.
"""

import time

from twisted.internet import defer

from buildbot_mq_ordered.util.backoff import Backoff

# seconds before the second load of a run of failures, and at most
FIRST_DELAY = 0.1
MAX_DELAY = 1.0


class ReloadPace:
    """Owns the count of commits and loads failed in a row and when the
    next load may start. The first load after a failure comes at once (a
    one-off failure costs nothing); each further failure in a row doubles
    the wait, from 0.1 s up to 1 s: a 10 s failure costs at most 13 loads."""

    def __init__(self, clock=None, backoff=None):
        """``clock()``: seconds (default: the monotonic clock)."""
        self._clock = clock or time.monotonic
        self._backoff = backoff or Backoff(FIRST_DELAY, 2, MAX_DELAY)
        self.failures = 0   # commits and loads failed in a row
        self.due = 0.0      # (clock) no load before

    def failed(self):
        self.failures += 1
        delay = self._backoff(self.failures - 1) if self.failures > 1 else 0.0
        self.due = self._clock() + delay

    def succeeded(self):
        self.failures = 0
        self.due = 0.0

    def allows(self):
        return self._clock() >= self.due

    def wait(self):
        """Seconds until a load may start (0: now)."""
        return max(0.0, self.due - self._clock())


class Reloads:
    """Owns whether a load is wanted, the requests waiting for the next
    load to start, the load under way and its waiters, and the pace.
    ``GroupCommit`` asks ``may_start``, says ``start`` and ``ended``."""

    def __init__(self, clock=None):
        self.wanted = False
        self.pace = ReloadPace(clock)
        self._asked = []          # answered by the next load to start
        self._loading = None      # the load under way's waiters (None: none under way)

    @property
    def under_way(self):
        return self._loading is not None

    def ask(self):
        """A Deferred that the next load to start answers."""
        d = defer.Deferred()
        self._asked.append(d)
        self.wanted = True
        return d

    def may_start(self):
        return self.wanted and bool(self._asked or self.pace.allows())

    @property
    def waits_for_pace(self):
        return self.wanted and not self._asked and not self.pace.allows()

    def start(self):
        self.wanted = False
        self._loading, self._asked = self._asked, []

    def ended(self, failure=None):
        """The load under way ended (failed with failure): its waiters hear."""
        waiters, self._loading = self._loading, None
        for d in waiters:
            if failure is None:
                d.callback(None)
            else:
                d.errback(failure)
