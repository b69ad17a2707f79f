"""How soon the journal writer may read the journal again after a failure.
Pure: the clock is handed in.

A failed commit makes the writer read the journal again before it takes
batches (the numbering must follow what was really committed). With a
journal that keeps refusing writes (a full disk, a server away) every
retry cost a commit and a load: issue 21 saw a load per refused batch. The
first load after a failure comes at once (a one-off failure costs
nothing); each further failure in a row doubles the wait, from 0.1 s up to
1 s, and batches that come meanwhile are refused without touching the
journal: a 10 s failure costs at most 13 loads.
"""

import time

from buildbot_mq_ordered.util.backoff import Backoff

# seconds before the second load of a run of failures, and at most
FIRST_DELAY = 0.1
MAX_DELAY = 1.0


class ReloadPace:
    """Owns the count of commits and loads failed in a row and when the
    next load may start; ``GroupCommit`` tells it each failure and each
    commit that succeeded, and asks it before starting a load that follows
    a failure (a load asked for by a new leader is never held back)."""

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
