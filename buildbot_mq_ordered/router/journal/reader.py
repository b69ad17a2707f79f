"""Journal reads in one thread of their own, on a connection of their own,
so a read never holds up the reactor nor waits for a commit: the
sequencing has one reader for replays (a large replay) and one for key
lookups (so a lookup never waits behind a replay)."""

from twisted.internet import defer

from buildbot_mq_ordered.util.onethread import OneThread


class JournalReader:
    """Reads a journal (any backend) off the reactor, for the sequencing's
    replays or key lookups; owns its thread and its connection. A journal
    without a second connection (SQLite ``:memory:``) is read in place, and
    so is any journal where ``in_place`` says so."""

    def __init__(self, journal, name='journal-reader', in_place=False, purpose='replay'):
        self.journal = journal
        self._purpose = purpose   # which limits its connection has (PostgreSQL)
        self._thread = OneThread(name)
        self._in_place = in_place or journal.path == ':memory:'
        self._db = None

    def read(self, from_pos, limit, max_bytes=None):
        """A Deferred of Journal.read's answer."""
        if self._in_place:
            return defer.maybeDeferred(self.journal.read, from_pos, limit, max_bytes)
        return self._thread.run(self._on_own, self.journal.read_entries,
                                from_pos, limit, max_bytes)

    def last_seqs(self, keys):
        """A Deferred of Journal.last_seqs's answer."""
        if self._in_place:
            return defer.maybeDeferred(self.journal.last_seqs, keys)
        return self._thread.run(self._on_own, self.journal.read_last_seqs, keys)

    def _on_own(self, read, *args):
        if self._db is None:   # in the thread; again after a failure
            self._db = self.journal.reader_connection(self._purpose)
        try:
            return read(self._db, *args)
        except Exception:
            self._close()    # a broken connection: a new one next time
            raise

    def _close(self):
        if self._db is not None:
            try:
                self._db.close()
            except Exception:
                pass
            self._db = None

    def stop(self):
        self._thread.stop()     # waits for a read under way
        self._close()
