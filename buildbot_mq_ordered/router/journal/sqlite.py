"""The journal in a SQLite file (the router's node directory by default).

WAL with synchronous=NORMAL survives a killed process, and a commit is
an append to the WAL with no fsync: the writer runs it on the reactor.
``fsync=True`` (synchronous=FULL) also survives a lost machine, at a cost
per batch: its commits run in the writer thread.
``PRAGMA user_version`` names the file's layout: one of 0.1.0 (layout 0:
JSON text data, no stream id, no last-use times) is converted on open; a
newer one is refused.

Three connections: the writer's (appends; prunes and loads in the writer
thread), the lookups' (per-key counters, in place on the reactor) and the
replay reader's (its own thread): WAL lets readers run beside the writer. A
``:memory:`` journal has one connection, used in place.
"""

import json
import sqlite3
import uuid

from buildbot_mq_ordered import wire
from buildbot_mq_ordered.router.journal.base import BaseJournal
from buildbot_mq_ordered.router.journal.base import JournalVersionError

SCHEMA_VERSION = 1
TABLES = """
CREATE TABLE IF NOT EXISTS entries (
    pos INTEGER PRIMARY KEY, seq INTEGER NOT NULL, key TEXT NOT NULL,
    data BLOB NOT NULL, ts REAL NOT NULL);
CREATE TABLE IF NOT EXISTS keyseq (
    key TEXT PRIMARY KEY, seq INTEGER NOT NULL, ts REAL NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS producers (
    producer TEXT PRIMARY KEY, mark INTEGER NOT NULL, ts REAL NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS meta (
    name TEXT PRIMARY KEY, value NOT NULL) WITHOUT ROWID;
"""
# retention deletes by last use without scanning the tables
INDEXES = """
CREATE INDEX IF NOT EXISTS keyseq_ts ON keyseq (ts);
CREATE INDEX IF NOT EXISTS producers_ts ON producers (ts);
"""


class Journal(BaseJournal):
    """The SQLite backend: owns the file's three connections and its layout
    (made, converted from 0.1.0, or refused if newer). The sequencer opens
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

    def _upgrade(self):
        db = self._db
        version = db.execute("PRAGMA user_version").fetchone()[0]
        if version > SCHEMA_VERSION:
            raise JournalVersionError(
                f"journal {self.path} has layout version {version}, newer than this "
                f"buildbot-mq-ordered understands ({SCHEMA_VERSION}): upgrade it, or "
                "start the router with another node directory")
        if version == SCHEMA_VERSION:
            return
        now = self._clock()
        with self._transaction(db):
            # one by one: executescript() would commit half-way
            for statement in TABLES.split(';'):
                if statement.strip():
                    db.execute(statement)
            # from layout 0 (0.1.0): last-use times, msgpack data, a stream id
            for table in ('keyseq', 'producers'):
                columns = [row[1] for row in db.execute(f"PRAGMA table_info({table})")]
                if 'ts' not in columns:
                    db.execute(f"ALTER TABLE {table} ADD COLUMN ts REAL NOT NULL "
                               f"DEFAULT {float(now)}")
            for statement in INDEXES.split(';'):
                if statement.strip():
                    db.execute(statement)
            rows = db.execute("SELECT pos, data FROM entries WHERE typeof(data) = 'text'")
            db.executemany("UPDATE entries SET data = ? WHERE pos = ?",
                           [(wire.encode_data(json.loads(text)), pos) for pos, text in rows])
            # dashes: never mistaken for a number by the column's affinity
            db.execute("INSERT OR IGNORE INTO meta VALUES ('stream_id', ?)",
                       (str(uuid.uuid4()),))
            db.execute("INSERT OR IGNORE INTO meta VALUES ('last_pos', 0)")
            db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")

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
