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

One number per position, by construction: a load starts only when no
batch is queued or being written, batches are refused from the moment a
load is wanted until it ended, and a ``reload`` is answered only by a load
that started after it was asked for. So the owner's numbering is never
replaced under a batch numbered from it, and a leader that stepped down
and leads again serves only once the journal was read after it did.
While the journal keeps failing, loads are paced (``ReloadPace``).
"""

from collections import namedtuple

from twisted.internet import defer
from twisted.python import log
from twisted.python.failure import Failure

from buildbot_mq_ordered.router.reloadpace import ReloadPace

# ``work(*args)`` runs off the reactor (or in place); then ``done(result)``
# or ``failed(failure)`` on the reactor. kind: 'load', 'prune' or 'commit' (a
# commit may run in place where the others may not)
Job = namedtuple('Job', 'kind work args done failed')


class Refused(Exception):
    """A batch refused while the journal is read again, or the router stops."""


class GroupCommit:
    """Owns the batches numbered but not yet committed (the queue, the group
    being committed), whether batches are refused until the journal is read
    again, the loads wanted, asked for and under way, and which job comes
    next: a load, a prune, a commit. ``JournalWriter`` asks ``next_job``,
    runs it and says ``job_ended``; the owner (``Sequencing``) hears
    ``committed(entries)`` (a group, before its batches are answered),
    ``reloaded(marks)``, ``pruned(marks)`` and ``prune_failed(failure)``,
    marks being the journal's producer marks."""

    def __init__(self, journal, owner, clock=None):
        """``clock()``: seconds, for pacing loads (``ReloadPace``)."""
        self.journal = journal
        self._owner = owner
        self.busy = False         # a job under way
        self.queue = []           # (entries, producer, mark, deferred), numbered
        self.writing = []         # the group being committed
        self.failure = None       # refuse batches until a load succeeds
        self.load_wanted = False  # a load starts once the writer is idle (and it is due)
        self.pace = ReloadPace(clock)
        self.stopped = False
        self._asked = []          # reload() waiters: the next load to start answers them
        self._loading = None      # the load under way's waiters (None: no load under way)

    @property
    def idle(self):
        return not self.busy and not self.queue

    @property
    def refusing(self):
        return (self.failure is not None or self.load_wanted or self._loading is not None
                or self.stopped)

    def write(self, entries, producer, mark):
        """A Deferred that fires once the batch is committed (after every
        batch numbered before it), or fails if it never will be. An empty
        batch (a resubmission) waits for the batches before it: its producer's
        mark is only safe to acknowledge once they are committed."""
        if self.refusing:
            return defer.fail(self._refusal())
        if not entries and self.idle:
            return defer.succeed(None)
        d = defer.Deferred()
        self.queue.append((entries, producer, mark, d))
        return d

    def _refusal(self):
        if self.stopped:
            return Failure(Refused("the router is stopping"))
        if self.failure is None:
            return Failure(Refused("the sequencer is reading its journal again"))
        if not self.load_wanted and self._loading is None:
            # the last load failed: a refused batch asks for one more, when
            # the pace allows (a server away is not hammered)
            self.load_wanted = True
        return self.failure

    def reload(self):
        """A Deferred that fires once the journal was read again by a load
        that started after this call (after the job under way, and the
        batches queued before, if any) and the owner was told (``reloaded``)."""
        d = defer.Deferred()
        self._asked.append(d)
        self.load_wanted = True
        return d

    def fail(self, failure):
        """Fail whatever is queued (the group being committed fails or
        commits on its own), and refuse batches until reloaded."""
        queued, self.queue = self.queue, []
        self.failure = failure
        self.load_wanted = True
        for *_, d in queued:
            d.errback(failure)

    def stop(self):
        """Refuse every batch from now on, fail what is queued, start no job
        (the one under way ends on its own)."""
        self.fail(Failure(Refused("the router is stopping")))
        self.stopped = True

    def pending_seq(self, key):
        """The newest number of key in a batch not yet committed, or None."""
        for entries, _, _, _ in reversed(self.writing + self.queue):
            for entry in reversed(entries):
                if entry[2] == key:
                    return entry[1]
        return None

    def pending_producers(self):
        return {b[1] for b in self.writing + self.queue}

    @property
    def load_waits(self):
        """A load is wanted but not yet due: the writer wakes at ``pace.due``."""
        return (self.load_wanted and not self.busy and not self.stopped and not self.queue
                and not self._asked and not self.pace.allows())

    def next_job(self):
        """The job to run now (it is under way from here), or None: one is
        under way already, or there is nothing to do (yet)."""
        if self.busy or self.stopped:
            return None
        if self.load_wanted and not self.queue:
            # asked for (a new leader): at once; after failures: paced
            if not self._asked and not self.pace.allows():
                return None
            self.load_wanted = False
            self._loading, self._asked = self._asked, []
            return self._start('load', self._load, (), self._loaded, self._load_failed)
        if self.failure is not None:
            return None
        if self.journal.take_prune_due():
            # the batches are committed: a failed prune holds none back
            return self._start('prune', self._prune, (), self._owner.pruned,
                               self._owner.prune_failed)
        if self.queue:
            # (with a load wanted: the batches numbered before it go first)
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
        self.pace.succeeded()
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
        self.pace.failed()
        self.failure = failure
        self.load_wanted = True
        for *_, d in group + queued:
            d.errback(failure)

    def _prune(self):
        self.journal.prune()
        return self.journal.producer_marks()

    def _load(self):
        self.journal.load()
        return self.journal.producer_marks()

    def _loaded(self, marks):
        waiters, self._loading = self._loading, None
        # nothing numbered is queued or being written (refused since the
        # load was wanted): the numbering may be replaced
        assert not self.queue and not self.writing, "a load under batches not yet committed"
        if not self.load_wanted:
            # (else failed, or asked for, after this load started: one more)
            self.failure = None
        self._owner.reloaded(marks)
        for d in waiters:
            d.callback(None)

    def _load_failed(self, failure):
        waiters, self._loading = self._loading, None
        self.pace.failed()
        if self.failure is None:
            # the numbering may not follow the journal: refused until a load
            self.failure = failure
        for d in waiters:
            d.errback(failure)
