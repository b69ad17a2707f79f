"""The journal's writer: runs the group commit's jobs (groupcommit.py).

The sequencing numbers a batch on the reactor and hands it here. Every
batch queued by the end of the reactor turn (several masters' submits read
in one poll) or while the previous commit was under way goes in one
commit; then the group is published (one stream event, not one per batch)
and each batch's Deferred fires, in position order, in one reactor turn. So
a burst costs one commit and one event per master.

A commit that waits for a disk or a server (PostgreSQL, an fsync) runs in
the writer's thread, so it never holds up the routing; one that waits for
neither (SQLite without fsync: 0.1 ms) runs on the reactor, as the hand-off
to the thread and back costs more (1-2 ms at low rates, see
docs/performance.rst). Prunes and loads always run in the thread. A
``:memory:`` journal has one connection: everything runs in place.
"""

from twisted.internet import defer
from twisted.python import log

from buildbot_mq_ordered.router.groupcommit import GroupCommit
from buildbot_mq_ordered.util.onethread import OneThread


class JournalWriter:
    """How the journal's writes run: owns the writer thread and the hold of
    a group to the end of the reactor turn; what to write and when is its
    ``GroupCommit``'s. ``Sequencing`` makes it and writes through it;
    ``Leadership`` has it read the journal again (``reload``) or fail what
    is queued (``fail``)."""

    def __init__(self, journal, owner, run=None, clock=None):
        """``owner``: ``GroupCommit``'s. ``run(f, *args)``: runs every job
        and returns a Deferred (unit tests: in place); batches are then not
        held to the turn's end. Default: the writer's thread, commits on the
        reactor where they wait for nothing. ``clock``: the reactor's time
        (loads paced after failures wait on it)."""
        if clock is None:
            from twisted.internet import reactor as clock
        self._clock = clock
        self.commits = GroupCommit(journal, owner, clock.seconds)
        self._thread = OneThread('journal-writer')
        in_place = defer.maybeDeferred
        self._hold_to_turn_end = run is None
        if run is None:
            run = in_place if journal.path == ':memory:' else self._thread.run
            self._run_commit = in_place if journal.commits_in_place else run
        else:
            self._run_commit = run
        self._run = run
        self._turn_end = None   # a call at the end of this turn: the group goes then
        self._load_due = None   # a call when a paced load may start

    @property
    def idle(self):
        return self.commits.idle

    def write(self, entries, producer, mark):
        """``GroupCommit.write``; the batch goes at the end of this turn."""
        d = self.commits.write(entries, producer, mark)
        if self._hold_to_turn_end and self.commits.queue:
            if self._turn_end is None and not self.commits.busy:
                # other submits read in this poll join the group
                self._turn_end = self._clock.callLater(0, self._end_of_turn)
        else:
            self._next()
        return d

    def _end_of_turn(self):
        self._turn_end = None
        self._next()

    def reload(self):
        """``GroupCommit.reload``."""
        d = self.commits.reload()
        self._next()
        return d

    def fail(self, failure):
        """``GroupCommit.fail``."""
        self.commits.fail(failure)
        self._next()

    def pending_seq(self, key):
        return self.commits.batches.pending_seq(key)

    def pending_producers(self):
        return self.commits.batches.producers()

    def _next(self):
        job = self.commits.next_job()
        if job is None:
            if self.commits.load_waits and self._load_due is None:
                self._load_due = self._clock.callLater(self.commits.pace.wait(), self._paced)
            return
        d = (self._run_commit if job.kind == 'commit' else self._run)(job.work, *job.args)
        d.addCallbacks(job.done, job.failed)
        d.addBoth(self._job_ended)
        d.addErrback(log.err, "journal writer")   # a bug in a callback: said, not lost

    def _paced(self):
        self._load_due = None
        self._next()

    def _job_ended(self, _):
        self.commits.job_ended()
        self._next()

    def stop(self):
        """Fail what is queued, start nothing more, wait for the job under
        way (its outcome reaches the owner later, on the reactor)."""
        self.commits.stop()
        for call in (self._turn_end, self._load_due):
            if call is not None and call.active():
                call.cancel()
        self._turn_end = self._load_due = None
        self._thread.stop()     # waits for a job under way
