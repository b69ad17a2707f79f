"""A SQLite journal file's layout: made, converted from an older one, or
refused when newer. ``PRAGMA user_version`` names it:

- 0: 0.1.0's (JSON text data, no stream id, no last-use times), or a new file;
- 1: 0.2 to 0.4's (msgpack data, a stream id, last-use times);
- 2: 0.5's: the ``terms`` table, and every entry's term.

An older layout is converted in one transaction when a router opens it;
the entries it holds get one "legacy" term, made then, that begins at the
oldest of them.
"""

import json
import time
import uuid

from buildbot_mq_ordered import wire
from buildbot_mq_ordered.router.journal.base import JournalVersionError
from buildbot_mq_ordered.router.journal.terms import new_term_id

SCHEMA_VERSION = 2
TABLES = """
CREATE TABLE IF NOT EXISTS entries (
    pos INTEGER PRIMARY KEY, seq INTEGER NOT NULL, key TEXT NOT NULL,
    data BLOB NOT NULL, ts REAL NOT NULL, term INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS keyseq (
    key TEXT PRIMARY KEY, seq INTEGER NOT NULL, ts REAL NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS producers (
    producer TEXT PRIMARY KEY, mark INTEGER NOT NULL, ts REAL NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS meta (
    name TEXT PRIMARY KEY, value NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS terms (
    term_id INTEGER PRIMARY KEY, first_pos INTEGER NOT NULL, number INTEGER NOT NULL,
    started REAL NOT NULL);
"""
# retention deletes by last use without scanning the tables
INDEXES = """
CREATE INDEX IF NOT EXISTS keyseq_ts ON keyseq (ts);
CREATE INDEX IF NOT EXISTS producers_ts ON producers (ts);
"""


def _run(db, script):
    # one by one: executescript() would commit half-way
    for statement in script.split(';'):
        if statement.strip():
            db.execute(statement)


def _columns(db, table):
    return [row[1] for row in db.execute(f"PRAGMA table_info({table})")]


def upgrade(db, path, now=None):
    """Make or convert the layout of the file open on db (in a transaction
    of the caller's); JournalVersionError if it is newer than this code's."""
    version = db.execute("PRAGMA user_version").fetchone()[0]
    if version > SCHEMA_VERSION:
        raise JournalVersionError(
            f"journal {path} has layout version {version}, newer than this "
            f"buildbot-mq-ordered understands ({SCHEMA_VERSION}): upgrade it, or "
            "start the router with another node directory")
    if version == SCHEMA_VERSION:
        return
    now = time.time() if now is None else now
    had_entries = bool(_columns(db, 'entries'))
    _run(db, TABLES)
    # from layout 0 (0.1.0): last-use times, msgpack data, a stream id
    for table in ('keyseq', 'producers'):
        if 'ts' not in _columns(db, table):
            db.execute(f"ALTER TABLE {table} ADD COLUMN ts REAL NOT NULL "
                       f"DEFAULT {float(now)}")
    _run(db, INDEXES)
    rows = db.execute("SELECT pos, data FROM entries WHERE typeof(data) = 'text'")
    db.executemany("UPDATE entries SET data = ? WHERE pos = ?",
                   [(wire.encode_data(json.loads(text)), pos) for pos, text in rows])
    # dashes: never mistaken for a number by the column's affinity
    db.execute("INSERT OR IGNORE INTO meta VALUES ('stream_id', ?)", (str(uuid.uuid4()),))
    db.execute("INSERT OR IGNORE INTO meta VALUES ('last_pos', 0)")
    if had_entries and 'term' not in _columns(db, 'entries'):
        _legacy_term(db, now)
    db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")


def _legacy_term(db, now):
    """From layout 0 or 1: the entries' term, one made now, that begins at
    the oldest entry kept (the head + 1 when none is). A column added with
    a constant default costs no rewrite of the table."""
    legacy = new_term_id()
    db.execute(f"ALTER TABLE entries ADD COLUMN term INTEGER NOT NULL DEFAULT {legacy}")
    first = db.execute("SELECT min(pos) FROM entries").fetchone()[0]
    if first is None:
        first = int(db.execute("SELECT value FROM meta WHERE name = 'last_pos'")
                    .fetchone()[0]) + 1
    db.execute("INSERT INTO terms (term_id, first_pos, number, started) VALUES (?,?,0,?)",
               (legacy, first, now))
