"""A PostgreSQL journal's layout: made on first use, converted from an
older one, or refused when newer, under a transaction-level advisory lock
(routers starting together). ``meta.schema_version`` names it:

- 1: 0.3 and 0.4's;
- 2: 0.5's: the ``terms`` table, and every entry's term.

Layout 1 is converted in the same transaction: the entries it holds get
one "legacy" term, made then, that begins at the oldest of them. The
column is added with that id as its default (no rewrite of the table),
which is then dropped: a router of 0.4 still running fails its writes
rather than write entries of no term.
"""

import time
import uuid

from buildbot_mq_ordered.router.journal import lease
from buildbot_mq_ordered.router.journal.base import JournalVersionError
from buildbot_mq_ordered.router.journal.terms import new_term_id

SCHEMA_VERSION = 2
TABLES = """
CREATE TABLE IF NOT EXISTS entries (
    pos BIGINT PRIMARY KEY, seq BIGINT NOT NULL, key TEXT NOT NULL,
    data BYTEA NOT NULL, ts DOUBLE PRECISION NOT NULL, term BIGINT NOT NULL);
CREATE TABLE IF NOT EXISTS keyseq (
    key TEXT PRIMARY KEY, seq BIGINT NOT NULL, ts DOUBLE PRECISION NOT NULL);
CREATE TABLE IF NOT EXISTS producers (
    producer TEXT PRIMARY KEY, mark BIGINT NOT NULL, ts DOUBLE PRECISION NOT NULL);
CREATE INDEX IF NOT EXISTS keyseq_ts ON keyseq (ts);
CREATE INDEX IF NOT EXISTS producers_ts ON producers (ts);
"""
TERMS_TABLE = """
CREATE TABLE IF NOT EXISTS terms (
    term_id BIGINT PRIMARY KEY, first_pos BIGINT NOT NULL, number BIGINT NOT NULL,
    started DOUBLE PRECISION NOT NULL)
"""
# pg_advisory_xact_lock's key while the layout is made: 'bmo-sche'
SCHEMA_LOCK = 0x626d6f2d73636865


def _run(db, script):
    for statement in script.split(';'):
        if statement.strip():
            db.execute(statement)


def _meta(db, name):
    row = db.execute("SELECT value FROM meta WHERE name = %s", (name,)).fetchone()
    return row[0] if row else None


def create(db, name, now=None):
    """Make, convert or refuse the layout, on db in a transaction of the
    caller's; ``name``: the journal's, for the error."""
    db.execute("SELECT pg_advisory_xact_lock(%s)", (SCHEMA_LOCK,))
    db.execute("CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value TEXT NOT NULL)")
    version = int(_meta(db, 'schema_version') or 0)
    if version > SCHEMA_VERSION:
        raise JournalVersionError(
            f"journal {name} has layout version {version}, newer than this "
            f"buildbot-mq-ordered understands ({SCHEMA_VERSION}): upgrade it, or "
            "use another database")
    if version == SCHEMA_VERSION:
        return
    if version:
        _legacy_term(db, time.time() if now is None else now)
    for script in (TABLES, TERMS_TABLE, lease.LEASE_TABLE):
        _run(db, script)
    db.cursor().executemany(
        "INSERT INTO meta VALUES (%s, %s) ON CONFLICT (name) DO NOTHING",
        [('stream_id', str(uuid.uuid4())), ('last_pos', '0')])
    db.execute("INSERT INTO meta VALUES ('schema_version', %s) ON CONFLICT (name) "
               "DO UPDATE SET value = excluded.value", (str(SCHEMA_VERSION),))


def _legacy_term(db, now):
    """From layout 1: the entries' term, one made now, from the oldest
    entry kept (the head + 1 when none is)."""
    legacy = new_term_id()
    db.execute(f"ALTER TABLE entries ADD COLUMN term BIGINT NOT NULL DEFAULT {legacy}")
    db.execute("ALTER TABLE entries ALTER COLUMN term DROP DEFAULT")
    _run(db, TERMS_TABLE)
    db.execute("INSERT INTO terms (term_id, first_pos, number, started) "
               "SELECT %s, COALESCE((SELECT min(pos) FROM entries), "
               "(SELECT value::bigint FROM meta WHERE name = 'last_pos') + 1), 0, %s",
               (legacy, now))
