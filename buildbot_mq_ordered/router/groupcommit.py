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
that started after it was asked for (``Reloads``). So the owner's
numbering is never replaced under a batch numbered from it, and a leader
that stepped down and leads again serves only once the journal was read
after it did. While the journal keeps failing, loads are paced.
"""

from collections import namedtuple

from twisted.internet import defer
from twisted.python import log
from twisted.python.failure import Failure

from buildbot_mq_ordered.router.batches import Batches
from buildbot_mq_ordered.router.reloads import Reloads

# ``work(*args)`` runs off the reactor (or in place); then ``done(result)``
# or ``failed(failure)`` on the reactor. kind: 'load', 'prune' or 'commit' (a
# commit may run in place where the others may not)
Job = namedtuple('Job', 'kind work args done failed')


class Refused(Exception):
    """A batch refused while the journal is read again, or the router stops."""


def load(journal):
    """A load's work: the journal read again; its producer marks."""
    journal.load()
    return journal.producer_marks()


def prune(journal):
    """A prune's work: retention applied; the producer marks kept."""
    journal.prune()
    return journal.producer_marks()


class GroupCommit:
    """Owns the batches numbered but not yet committed (``Batches``),
    whether batches are refused until the journal is read again, its
    ``Reloads``, and which job comes next: a load, a prune, a commit.
    ``JournalWriter`` asks ``next_job``, runs it and says ``job_ended``;
    the owner (``Sequencing``) hears
    ``committed(entries)`` (a group, before its batches are answered),
    ``reloaded(marks)``, ``pruned(marks)`` and ``prune_failed(failure)``,
    marks being the journal's producer marks."""

    def __init__(self, journal, owner, clock=None):
        """``clock()``: seconds, for pacing loads."""
        self.journal = journal
        self._owner = owner
        self.busy = False         # a job under way
        self.batches = Batches()
        self.failure = None       # refuse batches until a load succeeds
        self.reloads = Reloads(clock)
        self.pace = self.reloads.pace     # (loads after failures)
        self.stopped = False

    @property
    def queue(self):
        return self.batches.queue

    @property
    def idle(self):
        return not self.busy and not self.queue

    @property
    def refusing(self):
        r = self.reloads
        return self.failure is not None or r.wanted or r.under_way or self.stopped

    def write(self, entries, producer, mark):
        """A Deferred that fires once the batch is committed (after every
        batch numbered before it), or fails if it never will be. An empty
        batch (a resubmission) waits for the batches before it: its producer's
        mark is only safe to acknowledge once they are committed."""
        if self.refusing:
            return defer.fail(self._refusal())
        if not entries and self.idle:
            return defer.succeed(None)
        return self.batches.add(entries, producer, mark)

    def _refusal(self):
        if self.stopped:
            return Failure(Refused("the router is stopping"))
        if self.failure is None:
            return Failure(Refused("the sequencer is reading its journal again"))
        if not self.reloads.wanted and not self.reloads.under_way:
            # the last load failed: a refused batch asks for one more, when
            # the pace allows (a server away is not hammered)
            self.reloads.wanted = True
        return self.failure

    def reload(self):
        """A Deferred: the journal was read again by a load started after
        this call (and the batches queued before it committed), and the owner
        was told (``reloaded``)."""
        return self.reloads.ask()

    def fail(self, failure):
        """Fail what is queued (not the group under way), refuse until reloaded."""
        self.failure = failure
        self.reloads.wanted = True
        self.batches.fail_queue(failure)

    def stop(self):
        """Refuse every batch, fail the queue, start no job (not even a load)."""
        self.fail(Failure(Refused("the router is stopping")))
        self.stopped = True

    @property
    def load_waits(self):
        """A load is wanted, not yet due: the writer wakes at ``pace.due``."""
        return self.reloads.waits_for_pace and not (self.busy or self.stopped or self.queue)

    def next_job(self):
        """The job to run now (it is under way from here), or None: one is
        under way already, or there is nothing to do (yet)."""
        if self.busy or self.stopped:
            return None
        if self.reloads.wanted and not self.queue:
            # asked for (a new leader): at once; after failures: paced
            if not self.reloads.may_start():
                return None
            self.reloads.start()
            return self._start('load', load, (self.journal,), self._loaded, self._load_failed)
        if self.failure is not None:
            return None
        if self.journal.take_prune_due():
            # the batches are committed: a failed prune holds none back
            return self._start('prune', prune, (self.journal,), self._owner.pruned,
                               self._owner.prune_failed)
        if self.queue:
            # (with a load wanted: the batches numbered before it go first)
            return self._start('commit', self.journal.append_batches,
                               (self.batches.take_group(),), self._written, self._not_written)
        return None

    def _start(self, *job):
        self.busy = True
        return Job(*job)

    def job_ended(self):
        """The job's ``done`` or ``failed`` has run: the next one may start."""
        self.busy = False

    def _written(self, _):
        entries, answers = self.batches.end_group()
        self.pace.succeeded()
        try:
            self._owner.committed(entries)
        except Exception:
            # committed, but not published (a bug): each submitter hears it,
            # none waits for ever; masters replay what they missed
            failure = Failure()
            log.err(failure, "journal writer: publishing a committed group")
            for d in answers:
                d.errback(failure)
            return
        for d in answers:
            d.callback(None)

    def _not_written(self, failure):
        _, answers = self.batches.end_group()
        self.pace.failed()
        self.failure = failure
        self.reloads.wanted = True
        for d in answers:
            d.errback(failure)
        self.batches.fail_queue(failure)     # numbered after the group

    def _loaded(self, marks):
        # nothing numbered is queued or being written (refused since the
        # load was wanted): the numbering may be replaced
        assert not self.queue and not self.batches.writing, "a load under uncommitted batches"
        if not self.reloads.wanted:
            # (else failed, or asked for, after this load started: one more)
            self.failure = None
        self._owner.reloaded(marks)
        self.reloads.ended()

    def _load_failed(self, failure):
        self.pace.failed()
        if self.failure is None:
            # the numbering may not follow the journal: refused until a load
            self.failure = failure
        self.reloads.ended(failure)
