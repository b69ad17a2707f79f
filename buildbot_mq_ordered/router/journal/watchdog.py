"""The watchdog of a PostgreSQL journal's connections (pglink.Link): every
CHECK_EVERY seconds it aborts those whose operation outlasted its bound.

A thread of its own, not a call on the reactor: the reactor may be the
very thread a hung call holds (a key lookup runs on it), and a check
that waits for the reactor would wait for the hang. A check that comes
late - the whole process was stopped, a host frozen - aborts nothing but
moves every deadline by what it missed: the answer may be waiting.
"""

import threading
import time
import weakref

CHECK_EVERY = 0.25


class Watchdog:
    """Owns the set of watched links and the thread that checks them; the
    journal makes and starts it, links join it when made (``watch``) and
    leave it when dropped; ``stop`` ends the thread."""

    def __init__(self, every=CHECK_EVERY, now=time.monotonic):
        self.every = every
        self._now = now
        self._last = None       # when the last check ran
        self._links = weakref.WeakSet()
        self._lock = threading.Lock()
        self._stopping = None
        self.aborted = 0     # operations aborted so far

    def watch(self, link):
        with self._lock:
            self._links.add(link)

    def start(self):
        with self._lock:
            if self._stopping is None:
                self._stopping = threading.Event()
                threading.Thread(target=self._run, args=(self._stopping,),
                                 name='journal-watchdog', daemon=True).start()

    def check(self):
        """Abort every watched link past its bound; how many were."""
        with self._lock:
            links = list(self._links)
        now = self._now()
        missed = 0 if self._last is None else now - self._last - self.every
        self._last = now
        if missed > self.every:
            for link in links:
                link.postpone(missed)
            return 0
        n = sum(1 for link in links if link.abort_if_overdue())
        self.aborted += n
        return n

    def _run(self, stopping):
        while not stopping.wait(self.every):
            self.check()

    def stop(self):
        with self._lock:
            stopping, self._stopping = self._stopping, None
        if stopping is not None:
            stopping.set()
