"""Replay reads in one thread of their own, on a connection of their own,
so a large replay never holds up the reactor nor waits for a commit."""

from twisted.internet import defer

from buildbot_mq_ordered.util.onethread import OneThread


class JournalReader:
    """Reads a journal (any backend) off the reactor, for the sequencing's
    replays; owns the reader thread and its connection. A journal without a
    second connection (SQLite ``:memory:``) is read in place."""

    def __init__(self, journal):
        self.journal = journal
        self._thread = OneThread('journal-reader')
        self._db = None

    def read(self, from_pos, limit, max_bytes=None):
        """A Deferred of Journal.read's answer."""
        if self.journal.path == ':memory:':
            return defer.maybeDeferred(self.journal.read, from_pos, limit, max_bytes)
        return self._thread.run(self._read, from_pos, limit, max_bytes)

    def _read(self, from_pos, limit, max_bytes):
        if self._db is None:   # in the reader thread; again after a failure
            self._db = self.journal.reader_connection()
        try:
            return self.journal.read_entries(self._db, from_pos, limit, max_bytes)
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
