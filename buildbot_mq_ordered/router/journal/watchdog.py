"""The watchdog of a PostgreSQL journal's connections (pglink.Link): every
CHECK_EVERY seconds it aborts those whose operation outlasted its bound.

A thread of its own, not a call on the reactor: the reactor may be the
very thread a hung call holds (a key lookup runs on it), and a check
that waits for the reactor would wait for the hang.
"""

import threading
import weakref

CHECK_EVERY = 0.25


class Watchdog:
    """Owns the set of watched links and the thread that checks them; the
    journal makes it, links join it when made (``watch``) and leave it when
    dropped; ``stop`` ends the thread (a later ``watch`` starts it again)."""

    def __init__(self, every=CHECK_EVERY):
        self.every = every
        self._links = weakref.WeakSet()
        self._lock = threading.Lock()
        self._stopping = None
        self.aborted = 0     # operations aborted so far

    def watch(self, link):
        with self._lock:
            self._links.add(link)
            if self._stopping is None:
                self._stopping = threading.Event()
                threading.Thread(target=self._run, args=(self._stopping,),
                                 name='journal-watchdog', daemon=True).start()

    def check(self):
        """Abort every watched link past its bound; how many were."""
        with self._lock:
            links = list(self._links)
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
