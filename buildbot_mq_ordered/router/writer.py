"""The journal's writer: group commit, one stream event per group.

The sequencer numbers a batch on the reactor and hands it here. The writer
commits every batch queued by the end of the reactor turn (several masters'
submits read in one poll) or while the previous commit was under way, in
one transaction; then the owner publishes the group (``committed``: one
stream event, not one per batch) and each batch's Deferred fires, in
position order, in one reactor turn. So a burst costs one commit and one
event per master.

A commit that waits for a disk or a server (PostgreSQL, an fsync) runs in a
thread of its own, so it never holds up the routing; one that waits for
neither (SQLite without fsync: 0.1 ms) runs on the reactor, as the hand-off
to the thread and back costs more (1-2 ms at low rates, see
docs/performance.rst). Prunes and loads always run in the thread.

A failed commit fails its batches and every batch numbered after them
(their positions follow numbers that were never written), and the writer
refuses batches until ``reload`` - run once it is idle - has read the
journal again: the sequencer renumbers from what was really committed.
``stop`` (a deposed leader) fails what is queued the same way.
"""

from twisted.internet import defer
from twisted.python import log
from twisted.python.failure import Failure


class JournalWriter:
    def __init__(self, journal, owner, run=None):
        """``owner.committed(entries)`` (a group, before its batches are
        answered), ``owner.reloaded(marks)``, ``owner.pruned(marks)`` and
        ``owner.prune_failed(failure)`` are called on the reactor (marks: the
        journal's producer marks); ``run(f, *args)`` runs f in the writer
        thread and returns a Deferred (default: a thread of its own; given,
        it runs the commits too, and batches are not held to the turn's end)."""
        self.journal = journal
        self._owner = owner
        self._turn_end = None  # a call at the end of this turn: the group goes then
        # a :memory: journal has one connection, used in place
        self._run = run or (defer.maybeDeferred if journal.path == ':memory:'
                            else self._in_thread)
        self._run_commit = run or (defer.maybeDeferred if journal.commits_in_place
                                   else self._run)
        self._hold_to_turn_end = run is None
        self._pool = None
        self._queue = []       # (entries, producer, mark, deferred), numbered
        self._busy = False     # a job under way (in the thread, or in place)
        self._writing = []     # the group being committed
        self._failure = None   # refuse batches until reloaded
        self._reload_wanted = False
        self._reload_waiters = []

    @property
    def idle(self):
        return not self._busy and not self._queue

    def write(self, entries, producer, mark):
        """A Deferred that fires once the batch is committed (after every
        batch numbered before it), or fails if it never will be. An empty
        batch (a resubmission) waits for the batches before it: its producer's
        mark is only safe to acknowledge once they are committed."""
        if self._failure is not None:
            # one attempt per refused batch: a server away is not hammered
            self._reload_wanted = True
            self._next()
            return defer.fail(self._failure)
        if not entries and self.idle:
            return defer.succeed(None)
        d = defer.Deferred()
        self._queue.append((entries, producer, mark, d))
        if not self._hold_to_turn_end:
            self._next()
        elif self._turn_end is None and not self._busy:
            # other submits read in this poll join the group
            from twisted.internet import reactor
            self._turn_end = reactor.callLater(0, self._end_of_turn)
        return d

    def _end_of_turn(self):
        self._turn_end = None
        self._next()

    def reload(self):
        """A Deferred that fires once the journal was read again (after the
        commit under way, if any) and the owner was told (``reloaded``)."""
        d = defer.Deferred()
        self._reload_waiters.append(d)
        self._reload_wanted = True
        self._next()
        return d

    def pending_seq(self, key):
        """The newest number of key in a batch not yet committed, or None."""
        for entries, _, _, _ in reversed(self._writing + self._queue):
            for entry in reversed(entries):
                if entry[2] == key:
                    return entry[1]
        return None

    def pending_producers(self):
        return {b[1] for b in self._writing + self._queue}

    def fail(self, failure):
        """Fail whatever is queued (the group being committed fails or
        commits on its own), and refuse batches until reloaded."""
        queued, self._queue = self._queue, []
        self._failure = failure
        self._reload_wanted = True
        for *_, d in queued:
            d.errback(failure)
        self._next()

    def _next(self):
        if self._busy:
            return
        if self._reload_wanted:
            self._reload_wanted = False
            return self._job(self._load, self._loaded, self._load_failed)
        if self._failure is not None:
            return
        if self.journal.take_prune_due():
            return self._job(self._prune, self._pruned, self._prune_failed)
        if self._queue:
            self._writing, self._queue = self._queue, []
            self._job(self.journal.append_batches, self._written, self._not_written,
                      [b[:3] for b in self._writing], run=self._run_commit)

    def _job(self, f, done, failed, *args, run=None):
        self._busy = True
        d = (run or self._run)(f, *args)
        d.addCallbacks(done, failed)
        d.addBoth(self._job_done)
        d.addErrback(log.err, "journal writer")   # a bug in a callback: said, not lost

    def _job_done(self, result):
        self._busy = False
        self._next()

    def _written(self, _):
        group, self._writing = self._writing, []
        try:
            self._owner.committed([e for b in group for e in b[0]])
        except Exception:
            # committed, but not published (a bug): each submitter hears it,
            # none waits for ever; masters replay what they missed
            failure = Failure()
            log.err(failure, "journal writer: publishing a committed group")
            for *_, d in group:
                d.errback(failure)
            return
        for *_, d in group:
            d.callback(None)

    def _not_written(self, failure):
        group, self._writing = self._writing, []
        queued, self._queue = self._queue, []
        self._failure = failure
        self._reload_wanted = True
        for *_, d in group + queued:
            d.errback(failure)

    def _prune(self):
        self.journal.prune()
        return self.journal.producer_marks()

    def _pruned(self, marks):
        self._owner.pruned(marks)

    def _prune_failed(self, failure):
        # the batches are committed: a failed prune holds none back
        self._owner.prune_failed(failure)

    def _load(self):
        self.journal.load()
        return self.journal.producer_marks()

    def _loaded(self, marks):
        self._failure = None
        self._owner.reloaded(marks)
        waiters, self._reload_waiters = self._reload_waiters, []
        for d in waiters:
            d.callback(None)

    def _load_failed(self, failure):
        waiters, self._reload_waiters = self._reload_waiters, []
        for d in waiters:
            d.errback(failure)

    def _in_thread(self, f, *args):
        from twisted.internet import reactor
        from twisted.internet.threads import deferToThreadPool
        if self._pool is None:
            from twisted.python.threadpool import ThreadPool
            self._pool = ThreadPool(1, 1, name='journal-writer')
            self._pool.start()
        return deferToThreadPool(reactor, self._pool, f, *args)

    def stop(self):
        if self._turn_end is not None and self._turn_end.active():
            self._turn_end.cancel()
        self._turn_end = None
        if self._pool is not None:
            self._pool.stop()     # waits for a commit under way
            self._pool = None
