"""The sequencer's history on disk (SQLite, in the router's node directory).

Every batch is written in one transaction *before* the submitter is
acknowledged, so a router killed with SIGKILL and started again continues
the same positions and per-key numbers and can replay what it acknowledged.
WAL with synchronous=NORMAL survives a killed process; ``fsync=True``
(synchronous=FULL) also survives a lost machine, at a cost per batch.

Retention keeps the newest ``retention_messages`` entries and none older
than ``retention_seconds``. Per-key counters last as long as the history:
a key unused since the oldest entry kept is dropped (it would start again at
1), so the table stays bounded however many keys there are (Buildbot's embed
ids: about 57 new keys per build). Producer marks last ``retention_seconds``
after their last use (a row per master start).

Every journal has a stream id, a UUID made with it: a master tells a new
stream (a lost journal) by it. Entries' data is stored as masters encoded
it (msgpack bytes). ``PRAGMA user_version`` names the file's layout: one of
0.1.0 (layout 0: JSON text data, no stream id, no last-use times) is
converted on open; a newer one is refused.
"""

import json
import sqlite3
import time
import uuid

from buildbot_mq_ordered import wire

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

# prune once per this many appends: retention is a bound, not an exact size
PRUNE_EVERY = 200


class JournalVersionError(RuntimeError):
    """The journal file was written by a newer version."""


_encode_key = json.JSONEncoder(ensure_ascii=False, separators=(',', ':')).encode


def key_text(key):
    return _encode_key(key)


class Journal:
    def __init__(self, path, retention_messages=1000000,
                 retention_seconds=7 * 86400, fsync=False, clock=time.time,
                 background_checkpoint=False):
        self.path = path
        self.retention_messages = retention_messages
        self.retention_seconds = retention_seconds
        self._clock = clock
        self._appends_since_prune = 0
        self._db = sqlite3.connect(path, isolation_level=None)
        if path != ':memory:':
            self._db.execute("PRAGMA journal_mode=WAL")
            if background_checkpoint:
                # the caller runs checkpoint() in a thread: a commit never
                # waits for the WAL to be copied into the database and synced
                self._db.execute("PRAGMA wal_autocheckpoint=0")
        self._db.execute("PRAGMA synchronous=" + ("FULL" if fsync else "NORMAL"))
        self._upgrade()
        self.stream_id = self._meta('stream_id')
        self.last_pos = self._meta('last_pos') or 0
        row = self._db.execute("SELECT min(pos) FROM entries").fetchone()
        self.first_pos = row[0] if row[0] is not None else self.last_pos + 1

    def _meta(self, name):
        row = self._db.execute("SELECT value FROM meta WHERE name=?", (name,)).fetchone()
        return row[0] if row else None

    def _upgrade(self):
        db = self._db
        version = db.execute("PRAGMA user_version").fetchone()[0]
        if version > SCHEMA_VERSION:
            db.close()
            raise JournalVersionError(
                f"journal {self.path} has layout version {version}, newer than this "
                f"buildbot-mq-ordered understands ({SCHEMA_VERSION}): upgrade it, or "
                "start the router with another node directory")
        if version == SCHEMA_VERSION:
            return
        now = self._clock()
        with self._transaction():
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
            db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")

    def _transaction(self):
        return _Transaction(self._db)

    def close(self):
        self._db.close()

    def checkpoint(self):
        """Copy the WAL into the database (PASSIVE: never blocks a writer).
        Thread-safe: uses its own connection; run it in a thread."""
        db = sqlite3.connect(self.path, isolation_level=None)
        try:
            return db.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
        finally:
            db.close()

    def producer_marks(self):
        return dict(self._db.execute("SELECT producer, mark FROM producers"))

    def last_seq(self, key):
        row = self._db.execute("SELECT seq FROM keyseq WHERE key=?",
                               (key_text(key),)).fetchone()
        return row[0] if row else 0

    def append(self, entries, producer, mark):
        """Write a numbered batch and the producer's new mark, atomically."""
        if not entries:
            return
        now = self._clock()
        texts = {}
        rows = []
        for pos, seq, key, data in entries:
            text = texts.get(key)
            if text is None:
                text = texts[key] = _encode_key(key)
            rows.append((pos, seq, text, data, now))
        # the last number of each key in this batch is its new counter
        counters = {row[2]: row[1] for row in rows}
        last = entries[-1][0]
        db = self._db
        with self._transaction():
            db.executemany("INSERT INTO entries VALUES (?,?,?,?,?)", rows)
            db.executemany("INSERT OR REPLACE INTO keyseq VALUES (?,?,?)",
                           [(k, seq, now) for k, seq in counters.items()])
            db.execute("INSERT OR REPLACE INTO producers VALUES (?,?,?)",
                       (producer, mark, now))
            db.execute("INSERT OR REPLACE INTO meta VALUES ('last_pos', ?)", (last,))
        if self.first_pos > self.last_pos:
            self.first_pos = entries[0][0]
        self.last_pos = last
        self._appends_since_prune += 1

    @property
    def prune_due(self):
        """True once every PRUNE_EVERY appends: the caller prunes then, after
        it published the batch (a failed prune must not hold a batch back)."""
        return self._appends_since_prune >= PRUNE_EVERY

    def prune(self):
        """Apply retention; returns the number of entries removed."""
        self._appends_since_prune = 0
        now = self._clock()
        cutoff = self.last_pos - self.retention_messages + 1
        row = self._db.execute(
            "SELECT pos FROM entries WHERE ts >= ? ORDER BY pos LIMIT 1",
            (now - self.retention_seconds,)).fetchone()
        cutoff = max(cutoff, row[0] if row else self.last_pos + 1)
        n = 0
        with self._transaction():
            if cutoff > self.first_pos:
                n = self._db.execute("DELETE FROM entries WHERE pos < ?", (cutoff,)).rowcount
            # a counter lives as long as the history: a key none of whose
            # messages is left, unused since the oldest one kept, goes
            # (entries are appended in time order: the first one kept is the
            # oldest, found by its position, not by scanning them all)
            row = self._db.execute("SELECT ts FROM entries WHERE pos >= ? ORDER BY pos "
                                   "LIMIT 1", (max(cutoff, self.first_pos),)).fetchone()
            oldest = row[0] if row else None
            self._db.execute("DELETE FROM keyseq WHERE ts < ?",
                             (now - self.retention_seconds if oldest is None else oldest,))
            # marks by age only: few rows, and they keep resubmissions out
            self._db.execute("DELETE FROM producers WHERE ts < ?",
                             (now - self.retention_seconds,))
        self.first_pos = max(self.first_pos, cutoff)
        return n

    def counts(self):
        """Rows of each table (for figures and tests)."""
        return {table: self._db.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
                for table in ('entries', 'keyseq', 'producers')}

    def read(self, from_pos, limit, max_bytes=None):
        """Entries [pos, seq, key, data] from from_pos on: at most limit, and
        (the first always) while their keys and data stay within max_bytes."""
        return read_entries(self._db, from_pos, limit, max_bytes)


def read_entries(db, from_pos, limit, max_bytes=None):
    """Journal.read on a given connection."""
    out = []
    size = 0
    for pos, seq, key, data in db.execute(
            "SELECT pos, seq, key, data FROM entries WHERE pos >= ? "
            "ORDER BY pos LIMIT ?", (from_pos, limit)):
        if max_bytes is not None:
            size += len(key) + len(data)
            if out and size > max_bytes:
                break
        out.append([pos, seq, json.loads(key), data])
    return out


class JournalReader:
    """Reads a journal file in one thread of its own, on its own connection
    (WAL: a reader never blocks the writer), so a large replay never holds
    up the reactor. A ``:memory:`` journal has no second connection: it is
    read in place."""

    def __init__(self, journal):
        self.journal = journal
        self._pool = None      # started at the first read
        self._db = None

    def read(self, from_pos, limit, max_bytes=None):
        """A Deferred of Journal.read's answer."""
        from twisted.internet import defer
        if self.journal.path == ':memory:':
            return defer.maybeDeferred(self.journal.read, from_pos, limit, max_bytes)
        from twisted.internet import reactor
        from twisted.internet.threads import deferToThreadPool
        if self._pool is None:
            from twisted.python.threadpool import ThreadPool
            self._pool = ThreadPool(1, 1, name='journal-reader')
            self._pool.start()
        return deferToThreadPool(reactor, self._pool, self._read, from_pos, limit, max_bytes)

    def _read(self, from_pos, limit, max_bytes):
        if self._db is None:   # in the reader thread, once
            self._db = sqlite3.connect(self.journal.path, check_same_thread=False)
        return read_entries(self._db, from_pos, limit, max_bytes)

    def stop(self):
        if self._pool is not None:
            self._pool.stop()     # waits for a read under way
            self._pool = None
        if self._db is not None:
            self._db.close()
            self._db = None


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
