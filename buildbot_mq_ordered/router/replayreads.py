"""Replays: read off the reactor (``JournalReader``), at most so many at a
time, and never past what was published."""

from autobahn.wamp.exception import ApplicationError
from twisted.internet import defer

from buildbot_mq_ordered import wire
from buildbot_mq_ordered.router.journal import JournalReader

# replays under way: per caller session (a master has one at a time) and in all
MAX_REPLAYS_PER_SESSION = 2
MAX_REPLAYS = 16


class ReplayReads:
    """Owns the replay reader (a thread and a connection) and the replays
    under way. The sequencing answers ``replay`` with it; ``head()`` is the
    last position published."""

    def __init__(self, journal, head):
        self.journal = journal
        self._head = head
        self._replays = []     # caller session of each replay under way
        self.reader = JournalReader(journal)

    def stop(self):
        self.reader.stop()

    def replay(self, from_pos, limit, caller):
        """A Deferred of [stream id, first position, head, entries]: at most
        limit entries (and wire.MAX_REPLAY) from from_pos on, none past the
        head; caller: who asks (replays per caller are bounded)."""
        limit = min(limit, wire.MAX_REPLAY)
        j = self.journal
        # the oldest position before the read (the read starts at or after
        # it), the head when answering: at least every position published
        # before this answer, which travels behind those events
        first_pos = j.first_pos
        start = max(from_pos, first_pos)
        if not limit or start > self._head():
            return defer.succeed([j.stream_id, first_pos, self._head(), []])
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
        d.addCallback(self._answer, first_pos)
        return d

    def _answer(self, entries, first_pos):
        head = self._head()
        return [self.journal.stream_id, first_pos, head, [e for e in entries if e[0] <= head]]
