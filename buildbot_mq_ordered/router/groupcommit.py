"""The journal writer's state: group commit, as a state machine. Pure: no
thread, no reactor - ``JournalWriter`` (writer.py) runs the jobs it asks
for, and a unit test may run them by hand.

Batches are numbered before they are committed. Every batch queued while a
commit is under way goes in the next one, one transaction. A failed commit
fails its group and every batch numbered after it (their positions follow
numbers that were never written), and batches are refused until a load -
the next job - has read the journal again and the owner renumbered from
what was really committed. ``fail`` (a deposed leader) fails what is
queued the same way.
"""

from collections import namedtuple

from twisted.internet import defer
from twisted.python import log
from twisted.python.failure import Failure

# ``work(*args)`` runs off the reactor (or in place); then ``done(result)``
# or ``failed(failure)`` on the reactor. kind: 'load', 'prune' or 'commit' (a
# commit may run in place where the others may not)
Job = namedtuple('Job', 'kind work args done failed')


class GroupCommit:
    """Owns the batches numbered but not yet committed (the queue, the group
    being committed), whether batches are refused until the journal is read
    again, and which job comes next: a load, a prune, a commit.
    ``JournalWriter`` asks ``next_job``, runs it and says ``job_ended``; the
    owner (``Sequencing``) hears ``committed(entries)`` (a group, before its
    batches are answered), ``reloaded(marks)``, ``pruned(marks)`` and
    ``prune_failed(failure)``, marks being the journal's producer marks."""

    def __init__(self, journal, owner):
        self.journal = journal
        self._owner = owner
        self.busy = False         # a job under way
        self.queue = []           # (entries, producer, mark, deferred), numbered
        self.writing = []         # the group being committed
        self.failure = None       # refuse batches until reloaded
        self.reload_wanted = False
        self._reload_waiters = []

    @property
    def idle(self):
        return not self.busy and not self.queue

    def write(self, entries, producer, mark):
        """A Deferred that fires once the batch is committed (after every
        batch numbered before it), or fails if it never will be. An empty
        batch (a resubmission) waits for the batches before it: its producer's
        mark is only safe to acknowledge once they are committed."""
        if self.failure is not None:
            # one load per refused batch: a server away is not hammered
            self.reload_wanted = True
            return defer.fail(self.failure)
        if not entries and self.idle:
            return defer.succeed(None)
        d = defer.Deferred()
        self.queue.append((entries, producer, mark, d))
        return d

    def reload(self):
        """A Deferred that fires once the journal was read again (after the
        job under way, if any) and the owner was told (``reloaded``)."""
        d = defer.Deferred()
        self._reload_waiters.append(d)
        self.reload_wanted = True
        return d

    def fail(self, failure):
        """Fail whatever is queued (the group being committed fails or
        commits on its own), and refuse batches until reloaded."""
        queued, self.queue = self.queue, []
        self.failure = failure
        self.reload_wanted = True
        for *_, d in queued:
            d.errback(failure)

    def pending_seq(self, key):
        """The newest number of key in a batch not yet committed, or None."""
        for entries, _, _, _ in reversed(self.writing + self.queue):
            for entry in reversed(entries):
                if entry[2] == key:
                    return entry[1]
        return None

    def pending_producers(self):
        return {b[1] for b in self.writing + self.queue}

    def next_job(self):
        """The job to run now (it is under way from here), or None: one is
        under way already, or there is nothing to do."""
        if self.busy:
            return None
        if self.reload_wanted:
            self.reload_wanted = False
            return self._start('load', self._load, (), self._loaded, self._load_failed)
        if self.failure is not None:
            return None
        if self.journal.take_prune_due():
            # the batches are committed: a failed prune holds none back
            return self._start('prune', self._prune, (), self._owner.pruned,
                               self._owner.prune_failed)
        if self.queue:
            self.writing, self.queue = self.queue, []
            return self._start('commit', self.journal.append_batches,
                               ([b[:3] for b in self.writing],), self._written, self._not_written)
        return None

    def _start(self, *job):
        self.busy = True
        return Job(*job)

    def job_ended(self):
        """The job's ``done`` or ``failed`` has run: the next one may start."""
        self.busy = False

    def _written(self, _):
        group, self.writing = self.writing, []
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
        group, self.writing = self.writing, []
        queued, self.queue = self.queue, []
        self.failure = failure
        self.reload_wanted = True
        for *_, d in group + queued:
            d.errback(failure)

    def _prune(self):
        self.journal.prune()
        return self.journal.producer_marks()

    def _load(self):
        self.journal.load()
        return self.journal.producer_marks()

    def _loaded(self, marks):
        self.failure = None
        self._owner.reloaded(marks)
        waiters, self._reload_waiters = self._reload_waiters, []
        for d in waiters:
            d.callback(None)

    def _load_failed(self, failure):
        waiters, self._reload_waiters = self._reload_waiters, []
        for d in waiters:
            d.errback(failure)
