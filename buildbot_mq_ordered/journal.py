"""The sequencer's history on disk (SQLite, in the router's node directory).

Every batch is written in one transaction *before* the submitter is
acknowledged, so a router killed with SIGKILL and started again continues
the same positions and per-key numbers and can replay what it acknowledged.
WAL with synchronous=NORMAL survives a killed process; ``fsync=True``
(synchronous=FULL) also survives a lost machine, at a cost per batch.

Retention keeps the newest ``retention_messages`` entries and none older
than ``retention_seconds``. Per-key counters and producer marks are not
subject to retention: they are small, and dropping a counter would restart
that key at 1.

The data of an entry is stored as the master encoded it (msgpack bytes).
``PRAGMA user_version`` says which layout a file has: a journal of 0.1.0
(data as JSON text, version 0) is converted on open; a newer one refused.
"""

import json
import sqlite3
import time

from buildbot_mq_ordered import wire

SCHEMA_VERSION = 1
SCHEMA = """
CREATE TABLE IF NOT EXISTS entries (
    pos INTEGER PRIMARY KEY, seq INTEGER NOT NULL, key TEXT NOT NULL,
    data BLOB NOT NULL, ts REAL NOT NULL);
CREATE TABLE IF NOT EXISTS keyseq (
    key TEXT PRIMARY KEY, seq INTEGER NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS producers (
    producer TEXT PRIMARY KEY, mark INTEGER NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS meta (
    name TEXT PRIMARY KEY, value INTEGER NOT NULL) WITHOUT ROWID;
"""

class JournalVersionError(RuntimeError):
    """The journal file was written by a newer version."""


# prune once per this many appends: retention is a bound, not an exact size
PRUNE_EVERY = 200


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
        self._appends = 0
        self._db = sqlite3.connect(path, isolation_level=None)
        if path != ':memory:':
            self._db.execute("PRAGMA journal_mode=WAL")
            if background_checkpoint:
                # the caller runs checkpoint() in a thread: a commit never
                # waits for the WAL to be copied into the database and synced
                self._db.execute("PRAGMA wal_autocheckpoint=0")
        self._db.execute("PRAGMA synchronous=" + ("FULL" if fsync else "NORMAL"))
        self._upgrade()
        row = self._db.execute("SELECT value FROM meta WHERE name='last_pos'").fetchone()
        self.last_pos = row[0] if row else 0
        row = self._db.execute("SELECT min(pos) FROM entries").fetchone()
        self.first_pos = row[0] if row[0] is not None else self.last_pos + 1

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
        db.execute("BEGIN")
        try:
            # one by one: executescript() would commit half-way
            for statement in SCHEMA.split(';'):
                if statement.strip():
                    db.execute(statement)
            # 0.1.0 kept data as JSON text: re-encode it as masters now send it
            rows = db.execute("SELECT pos, data FROM entries WHERE typeof(data) = 'text'")
            db.executemany("UPDATE entries SET data = ? WHERE pos = ?",
                           [(wire.encode_data(json.loads(text)), pos) for pos, text in rows])
            db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
            db.execute("COMMIT")
        except BaseException:
            if db.in_transaction:
                db.execute("ROLLBACK")
            raise

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
        db.execute("BEGIN")
        try:
            db.executemany("INSERT INTO entries VALUES (?,?,?,?,?)", rows)
            db.executemany("INSERT OR REPLACE INTO keyseq VALUES (?,?)",
                           counters.items())
            db.execute("INSERT OR REPLACE INTO producers VALUES (?,?)", (producer, mark))
            db.execute("INSERT OR REPLACE INTO meta VALUES ('last_pos', ?)", (last,))
            db.execute("COMMIT")
        except BaseException:
            # SQLite may have rolled back already (disk full): a ROLLBACK
            # then fails and would hide the cause behind its own error
            if db.in_transaction:
                db.execute("ROLLBACK")
            raise
        if self.first_pos > self.last_pos:
            self.first_pos = entries[0][0]
        self.last_pos = last
        self._appends += 1
        if self._appends % PRUNE_EVERY == 0:
            self.prune()

    def prune(self):
        """Apply retention; returns the number of entries removed."""
        cutoff = self.last_pos - self.retention_messages + 1
        row = self._db.execute(
            "SELECT pos FROM entries WHERE ts >= ? ORDER BY pos LIMIT 1",
            (self._clock() - self.retention_seconds,)).fetchone()
        cutoff = max(cutoff, row[0] if row else self.last_pos + 1)
        if cutoff <= self.first_pos:
            return 0
        n = self._db.execute("DELETE FROM entries WHERE pos < ?", (cutoff,)).rowcount
        self.first_pos = cutoff
        return n

    def read(self, from_pos, limit, max_bytes=None):
        """Entries [pos, seq, key, data] from from_pos on: at most limit, and
        (the first always) while their keys and data stay within max_bytes."""
        out = []
        size = 0
        for pos, seq, key, data in self._db.execute(
                "SELECT pos, seq, key, data FROM entries WHERE pos >= ? "
                "ORDER BY pos LIMIT ?", (from_pos, limit)):
            if max_bytes is not None:
                size += len(key) + len(data)
                if out and size > max_bytes:
                    break
            out.append([pos, seq, json.loads(key), data])
        return out
