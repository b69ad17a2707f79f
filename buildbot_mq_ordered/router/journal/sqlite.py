"""The journal in a SQLite file (the router's node directory by default).

WAL with synchronous=NORMAL survives a killed process, and a commit is
an append to the WAL with no fsync: the writer runs it on the reactor.
``fsync=True`` (synchronous=FULL) also survives a lost machine, at a cost
per batch: its commits run in the writer thread.
``PRAGMA user_version`` names the file's layout (sqlitelayout.py): an
older one is converted on open, a newer one refused. Each opening begins
a new term (terms.py).

Three connections: the writer's (appends; prunes and loads in the writer
thread), the lookups' (per-key counters, in place on the reactor) and the
replay reader's (its own thread): WAL lets readers run beside the writer. A
``:memory:`` journal has one connection, used in place.
"""

import sqlite3

from buildbot_mq_ordered.router.journal import sqlitelayout
from buildbot_mq_ordered.router.journal.base import BaseJournal

SCHEMA_VERSION = sqlitelayout.SCHEMA_VERSION


class Journal(BaseJournal):
    """The SQLite backend: owns the file's three connections and its layout
    (made, converted, or refused if newer: sqlitelayout.py). The sequencer opens
    it (``open_journal``); SQLite's journal is never shared, so its router
    always leads."""

    # a local file, read beside the writer (WAL: a reader never waits for
    # it), a lock wait bounded by the connection's 5 s busy timeout; a
    # commit runs on the reactor too (commits_in_place): a lookup thread
    # would only add its hand-off to every new key
    lookups_in_place = True

    def __init__(self, path, retention_messages=1000000,
                 retention_seconds=7 * 86400, fsync=False, clock=None,
                 background_checkpoint=False):
        kw = {'clock': clock} if clock else {}
        super().__init__(retention_messages, retention_seconds, **kw)
        self.path = self.name = path
        # synchronous=NORMAL: a WAL append, no fsync (~0.1 ms)
        self.commits_in_place = not fsync
        # the writer thread uses it, after it is made here
        self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        if path != ':memory:':
            self._db.execute("PRAGMA journal_mode=WAL")
            if background_checkpoint:
                # the caller runs checkpoint() in a thread: a commit never
                # waits for the WAL to be copied into the database and synced
                self._db.execute("PRAGMA wal_autocheckpoint=0")
        self._db.execute("PRAGMA synchronous=" + ("FULL" if fsync else "NORMAL"))
        try:
            self._upgrade()
        except BaseException:
            self._db.close()
            raise
        self._lookup_db = self._db if path == ':memory:' else \
            sqlite3.connect(path, isolation_level=None)
        self.load()
        # this router numbers under a term of its own: a file reopened, or
        # restored from a backup, continues under a new one
        self.begin_term()

    def _upgrade(self):
        if self._db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION:
            return
        with self._transaction(self._db):
            sqlitelayout.upgrade(self._db, self.path, self._clock())

    def _transaction(self, db):
        return _Transaction(db)

    def close(self):
        if self._lookup_db is not self._db:
            self._lookup_db.close()
        self._db.close()

    def reader_connection(self, purpose='replay'):
        """A connection for another thread; None: read in place (``:memory:``).
        Every purpose is the same to a local file."""
        if self.path == ':memory:':
            return None
        return sqlite3.connect(self.path, check_same_thread=False)

    def checkpoint(self):
        """Copy the WAL into the database (PASSIVE: never blocks a writer).
        Thread-safe: uses its own connection; run it in a thread."""
        db = sqlite3.connect(self.path, isolation_level=None)
        try:
            return db.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
        finally:
            db.close()


class _Transaction:
    """BEGIN ... COMMIT, or ROLLBACK on any error. SQLite may have rolled
    back by itself (disk full): a ROLLBACK then fails and would hide the
    cause behind its own error, so it is issued only when one is open."""

    def __init__(self, db):
        self._db = db

    def __enter__(self):
        self._db.execute("BEGIN")

    def __exit__(self, kind, error, tb):
        if kind is None:
            try:
                self._db.execute("COMMIT")
                return False
            except BaseException:
                self._rollback()
                raise
        self._rollback()
        return False

    def _rollback(self):
        if self._db.in_transaction:
            self._db.execute("ROLLBACK")
