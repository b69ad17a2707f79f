"""The sequencing: what happens to a well-formed submit, replay or info
once it reached the sequencer.

Per submitted batch: number it (``Numbering``, on the reactor) once the
newest number of each of its keys is known, in arrival order
(``Arrivals``: a key the numbering's cache lacks is looked up in the
journal off the reactor), hand it to the journal's writer
(``JournalWriter``: group commit); once a group is committed, publish it,
then acknowledge each submitter, in position order, in one reactor turn (a
master sees its own batch's event before the acknowledgement). Numbering
follows what the journal really holds: it starts again from it whenever
the writer read it again. Replays are ``ReplayReads``'.
"""

import time

from autobahn.wamp.exception import ApplicationError

from buildbot_mq_ordered import wire
from buildbot_mq_ordered.router.arrivals import Arrivals
from buildbot_mq_ordered.router.failurelog import FailureLog
from buildbot_mq_ordered.router.keylookups import KeyLookups
from buildbot_mq_ordered.router.monitor import metrics
from buildbot_mq_ordered.router.numbering import Numbering
from buildbot_mq_ordered.router.replayreads import ReplayReads
from buildbot_mq_ordered.router.writer import JournalWriter

WRITE_FAILED = ("sequencer: cannot write the journal {path}: {err} ({n} failed writes in a "
                "row); masters retry")
WRITES_AGAIN = "sequencer: the journal takes writes again (after {n} failed)"
LOST_TAIL = ("sequencer: the journal {path} ends at position {head}, before position {known} "
             "this router published: positions {first}..{known} are lost from it (did its "
             "database fail over to a replica behind?); numbering on from {first} under a "
             "new term (id {term_id}): masters that delivered them log a rewritten tail")


class Sequencing:
    """Owns the numbering, the arrivals and their key lookups, the journal's
    writer, the replays and the head (the last position published). The
    Sequencer makes it and calls ``submit``, ``replay`` and ``info`` with
    arguments of the right shape; its writer calls ``committed``,
    ``reloaded``, ``pruned`` and ``prune_failed``; the Leadership calls
    ``reload`` and ``fail``. ``leading()`` says whether this router leads
    now, ``publish(entries)`` sends a committed group."""

    def __init__(self, journal, leading, publish, log, key_cache_size=10000, run=None,
                 clock=None):
        """``run``, ``clock``: how the writer runs its jobs and its clock
        (``JournalWriter``)."""
        self.journal = journal
        self._leading = leading
        self._publish = publish
        self.log = log
        self._key_cache_size = key_cache_size
        self._write_failures = FailureLog(log, WRITE_FAILED, WRITES_AGAIN)
        self.stopped = False
        self.replays = ReplayReads(journal, lambda: self.head)
        self.lookups = KeyLookups(journal, log)
        self.arrivals = Arrivals(self._knows, self.lookups.look_up)
        self.writer = JournalWriter(journal, self, run=run, clock=clock)
        self.head = journal.last_pos
        self.reloaded(journal.producer_marks())

    def leads(self):
        return not self.stopped and self._leading()

    def must_lead(self):
        if not self.leads():
            raise ApplicationError(wire.JOURNAL_ERROR, "this router does not lead the sequence "
                                                  "(any more): try again or another router")

    def stop(self):
        """Publish and number nothing more; what waits is refused, what is
        under way ends on its own (refused)."""
        self.stopped = True
        self.arrivals.stop()
        self.replays.stop()
        self.lookups.stop()
        self.writer.stop()

    # the leadership's

    def reload(self):
        return self.writer.reload()

    def fail(self, failure):
        """A step-down: fail what waits for numbering and what is queued."""
        self.arrivals.fail(ApplicationError(
            wire.JOURNAL_ERROR, f"this router no longer leads the sequence "
                                f"({wire.shown(str(failure.value))}): try again or another router"))
        self.writer.fail(failure)

    # the writer's owner

    def reloaded(self, marks):
        """Number on from the journal (at start, and after a failed commit
        once the writer is idle: nothing pending)."""
        j = self.journal
        if j.last_pos < self.head:
            self.log.error(LOST_TAIL, path=j.name, head=j.last_pos, known=self.head,
                           first=j.last_pos + 1, term_id=j.term_id)
        self.head = self.journal.last_pos   # published: everything committed is
        self.numbering = Numbering(
            last_pos=self.journal.last_pos, producer_marks=marks,
            lookup_seq=self._known_seq, key_cache_size=self._key_cache_size,
            term_id=self.journal.term_id)

    def pruned(self, marks):
        # marks unused for the retention time are gone from the journal;
        # those of batches not yet committed are not in it yet
        self.numbering.keep_marks(set(marks) | self.writer.pending_producers())

    def prune_failed(self, failure):
        self.log.warn("sequencer: applying the journal's retention failed ({err}); "
                      "tried again later", err=wire.shown(failure.getErrorMessage()))

    def committed(self, entries):
        """The writer committed a group (batches in position order): publish
        it before any of its batches is answered, in the same reactor turn,
        so that on a submitter's connection its event goes first (a stopping
        master counts on it). One publication per group, not per batch."""
        if not entries or not self.leads():
            # committed under a lease since lost, or while stopping: masters
            # replay it, the submitter's retry finds it sequenced
            return
        self.head = entries[-1][0]
        self._publish(entries)

    # keys: known in memory, or looked up (KeyLookups) before numbering

    def _knows(self, key):
        return self.numbering.cached(key) is not None or \
            self.writer.pending_seq(key) is not None

    def _known_seq(self, key):
        # not in the numbering's cache: a batch still on its way to the
        # journal, or what the journal said when looked up (counters only grow)
        seqs = [s for s in (self.writer.pending_seq(key), self.arrivals.take(key))
                if s is not None]
        if not seqs:
            raise RuntimeError("numbering a key neither known nor looked up")
        return max(seqs)

    # the sequencer's procedures

    def submit(self, producer, messages):
        """A Deferred of [producer mark, last position or None, the mark
        before]."""
        self.must_lead()
        started = time.perf_counter()
        messages = [(m[0], tuple(m[1]), m[2]) for m in messages]
        # the keys it will number (a resubmitted message is dropped)
        mark = self.numbering.producer_marks.get(producer, 0)
        return self.arrivals.admit({m[1] for m in messages if m[0] > mark},
                                   lambda: self._number(producer, messages, started))

    def _number(self, producer, messages, started):
        self.must_lead()
        # the journal's: a master has one submit in flight, and the numbering
        # starts again from the journal after a failed commit or a take-over
        prior = self.numbering.producer_marks.get(producer, 0)
        entries, mark = self.numbering.assign(producer, messages)
        d = self.writer.write(entries, producer, mark)
        d.addCallbacks(self._committed, self._not_committed,
                       callbackArgs=(entries, [mark, None, prior], started))
        return d

    def _committed(self, _, entries, answer, started):
        self.must_lead()
        if entries:
            self._write_failures.succeeded()
            metrics.observe_commit(time.perf_counter() - started, len(entries))
            answer[1] = entries[-1][0]
        return answer

    def _not_committed(self, failure):
        # nothing acknowledged, nothing published: the writer has the
        # numbering reloaded from the journal, and the master retries
        e = wire.shown(failure.getErrorMessage())
        if not self.stopped:
            self._write_failures.failed(path=self.journal.name, err=e)
        raise ApplicationError(wire.JOURNAL_ERROR, f"journal write failed: {e}")

    def replay(self, from_pos, limit, caller):
        """``ReplayReads.replay``, while leading."""
        self.must_lead()
        return self.replays.replay(from_pos, limit, caller)

    def info(self, term):
        self.must_lead()
        return info_answer(self.journal, self.head, term)


def info_answer(journal, head, term):
    """``info``'s answer (wire.py): the stream, the head published, the
    lease's term, and the journal's terms."""
    j = journal
    return {'stream_id': j.stream_id, 'head': head, 'first_pos': j.first_pos,
            'term': term, 'journal_rows': max(0, head - j.first_pos + 1),
            'term_id': j.term_id, 'terms': [list(t) for t in j.terms]}
