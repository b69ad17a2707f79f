"""The sequencing: what happens to a well-formed submit, replay or info
once it reached the sequencer.

Per submitted batch: number it (``Numbering``, on the reactor), hand it to
the journal's writer (``JournalWriter``: group commit); once a group is
committed, publish it, then acknowledge each submitter, in position order,
in one reactor turn (a master sees its own batch's event before the
acknowledgement). Numbering follows what the journal really holds: it
starts again from it whenever the writer read it again. Replays are read
off the reactor (``JournalReader``), at most so many at a time.
"""

import time

from autobahn.wamp.exception import ApplicationError
from twisted.internet import defer

from buildbot_mq_ordered import wire
from buildbot_mq_ordered.router.journal import JournalReader
from buildbot_mq_ordered.router.monitor import metrics
from buildbot_mq_ordered.router.numbering import Numbering
from buildbot_mq_ordered.router.writer import JournalWriter
from buildbot_mq_ordered.util.failurerun import FailureRun

# replays under way: per caller session (a master has one at a time) and in all
MAX_REPLAYS_PER_SESSION = 2
MAX_REPLAYS = 16


class Sequencing:
    """Owns the numbering, the journal's writer and reader, the head (the
    last position published) and the replays under way. The Sequencer
    makes it and calls ``submit``, ``replay`` and ``info`` with arguments
    of the right shape; its writer calls ``committed``, ``reloaded``,
    ``pruned`` and ``prune_failed``. ``leading()`` says whether this router
    leads now, ``publish(entries)`` sends a committed group."""

    def __init__(self, journal, leading, publish, log, key_cache_size=10000, run=None):
        """``run``: how the writer runs its jobs (``JournalWriter``)."""
        self.journal = journal
        self._leading = leading
        self._publish = publish
        self.log = log
        self._key_cache_size = key_cache_size
        self._journal_failures = FailureRun()
        self._replays = []     # caller session of each replay under way
        self.reader = JournalReader(journal)
        self.writer = JournalWriter(journal, self, run=run)
        self.reloaded(journal.producer_marks())

    def must_lead(self):
        if not self._leading():
            raise ApplicationError(wire.JOURNAL_ERROR, "this router does not lead the sequence "
                                                  "(any more): try again or another router")

    def stop(self):
        self.reader.stop()
        self.writer.stop()

    # the writer's owner

    def reloaded(self, marks):
        """Number on from the journal (at start, and after a failed commit
        once the writer is idle: nothing pending)."""
        self.head = self.journal.last_pos   # published: everything committed is
        self.numbering = Numbering(
            last_pos=self.journal.last_pos, producer_marks=marks,
            lookup_seq=self._lookup_seq, key_cache_size=self._key_cache_size)

    def _lookup_seq(self, key):
        # a key that fell out of the numbering's cache: a batch still on its
        # way to the journal may have the newest number
        seq = self.writer.pending_seq(key)
        return self.journal.last_seq(key) if seq is None else seq

    def pruned(self, marks):
        # marks unused for the retention time are gone from the journal;
        # those of batches not yet committed are not in it yet
        pending = self.writer.pending_producers()
        self.numbering.producer_marks = {
            p: m for p, m in self.numbering.producer_marks.items()
            if p in marks or p in pending}

    def prune_failed(self, failure):
        self.log.warn("sequencer: applying the journal's retention failed ({err}); "
                      "tried again later", err=failure.value)

    def committed(self, entries):
        """The writer committed a group (several batches, in position order):
        publish it before any of its batches is answered, in the same
        reactor turn, so that on a submitter's connection its event goes
        first (a stopping master counts on it). One publication per group,
        not per batch: a burst of submits costs each master one event."""
        if not entries or not self._leading():
            # committed under a lease since lost: masters replay it from the
            # journal, the submitter's retry finds it sequenced
            return
        self.head = entries[-1][0]
        self._publish(entries)

    # the sequencer's procedures

    def submit(self, producer, messages):
        """A Deferred of [producer mark, last position or None]."""
        self.must_lead()
        started = time.perf_counter()
        entries, mark = self.numbering.assign(
            producer, ((m[0], tuple(m[1]), m[2]) for m in messages))
        d = self.writer.write(entries, producer, mark)
        d.addCallbacks(self._committed, self._not_committed,
                       callbackArgs=(entries, mark, started))
        return d

    def _committed(self, _, entries, mark, started):
        self.must_lead()
        if not entries:
            return [mark, None]
        failures = self._journal_failures.succeeded()
        if failures:
            self.log.info("sequencer: the journal takes writes again (after {n} failed)",
                          n=failures)
        metrics.observe_commit(time.perf_counter() - started, len(entries))
        return [mark, entries[-1][0]]

    def _not_committed(self, failure):
        # nothing acknowledged, nothing published: the writer has the
        # numbering reloaded from the journal, and the master retries
        e = failure.value
        if self._journal_failures.failed():
            self.log.error("sequencer: cannot write the journal {path}: {err} "
                           "({n} failed writes in a row); masters retry",
                           path=self.journal.name, err=e, n=self._journal_failures.count)
        raise ApplicationError(wire.JOURNAL_ERROR, f"journal write failed: {e}")

    def replay(self, from_pos, limit, caller):
        """A Deferred of [stream id, first position, head, entries]: at most
        limit entries (and wire.MAX_REPLAY) from from_pos on, none past the
        head; caller: who asks (replays per caller are bounded)."""
        self.must_lead()
        limit = min(limit, wire.MAX_REPLAY)
        j = self.journal
        # the oldest position before the read (the read starts at or after
        # it), the head when answering: at least every position published
        # before this answer, which travels behind those events
        first_pos = j.first_pos
        start = max(from_pos, first_pos)
        if not limit or start > self.head:
            return defer.succeed([j.stream_id, first_pos, self.head, []])
        # a master replays one range at a time; a flood of replays must not
        # make the router hold hundreds of MB nor stall everyone else
        if len(self._replays) >= MAX_REPLAYS or \
                self._replays.count(caller) >= MAX_REPLAYS_PER_SESSION:
            raise ApplicationError(wire.BUSY, "too many replays under way; retry later")
        self._replays.append(caller)
        # read off the reactor (a connection of the reader thread's own), and
        # bounded by bytes too: the answer must fit the router's frames
        d = self.reader.read(start, limit, wire.MAX_REPLAY_BYTES)

        def done(result):
            self._replays.remove(caller)
            return result
        d.addBoth(done)
        # committed but not yet published (its event is on its way): not yet
        d.addCallback(lambda entries: [j.stream_id, first_pos, self.head,
                                       [e for e in entries if e[0] <= self.head]])
        return d

    def info(self, term):
        self.must_lead()
        j = self.journal
        return {'stream_id': j.stream_id, 'head': self.head, 'first_pos': j.first_pos,
                'term': term, 'journal_rows': max(0, self.head - j.first_pos + 1)}
