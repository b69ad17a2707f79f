"""The journal in a PostgreSQL database (psycopg 3): every router started
with the same database shares it, and one of them at a time - the holder of
the lease (lease.py) - writes it.

The layout is created on first use, under a transaction-level advisory
lock (routers starting together), and versioned by a ``schema_version``
row in ``meta``; a newer one is refused naming the database.

Connections are made on first use and again after one broke (a restarted
server, a cut network): each has TCP keepalives and a user timeout, so a
vanished server is noticed within seconds, not hours.
"""

import uuid

import psycopg

from buildbot_mq_ordered.router import journalurl
from buildbot_mq_ordered.router.journal import lease
from buildbot_mq_ordered.router.journal.base import BaseJournal
from buildbot_mq_ordered.router.journal.base import JournalVersionError

SCHEMA_VERSION = 1
TABLES = """
CREATE TABLE IF NOT EXISTS entries (
    pos BIGINT PRIMARY KEY, seq BIGINT NOT NULL, key TEXT NOT NULL,
    data BYTEA NOT NULL, ts DOUBLE PRECISION NOT NULL);
CREATE TABLE IF NOT EXISTS keyseq (
    key TEXT PRIMARY KEY, seq BIGINT NOT NULL, ts DOUBLE PRECISION NOT NULL);
CREATE TABLE IF NOT EXISTS producers (
    producer TEXT PRIMARY KEY, mark BIGINT NOT NULL, ts DOUBLE PRECISION NOT NULL);
CREATE INDEX IF NOT EXISTS keyseq_ts ON keyseq (ts);
CREATE INDEX IF NOT EXISTS producers_ts ON producers (ts);
"""
# pg_advisory_xact_lock's key while the layout is made: 'bmo-sche'
SCHEMA_LOCK = 0x626d6f2d73636865
# seconds: connecting, and a sent request unanswered, before it counts as lost
CONNECT_TIMEOUT = 5
USER_TIMEOUT = 5
# seconds the server keeps a transaction whose router went silent: its lock
# on the lease row would hold a take-over back (the server's own keepalive
# notices a vanished host only after two hours)
IDLE_IN_TRANSACTION = 3


def connect(url):
    """A connection in autocommit (transactions are explicit)."""
    return psycopg.connect(
        url, autocommit=True, connect_timeout=CONNECT_TIMEOUT,
        keepalives=1, keepalives_idle=2, keepalives_interval=1, keepalives_count=3,
        tcp_user_timeout=USER_TIMEOUT * 1000, application_name='buildbot-mq-ordered',
        options=f'-c idle_in_transaction_session_timeout={IDLE_IN_TRANSACTION * 1000}')


class _Connection:
    """A connection made when first needed, and again once it broke."""

    def __init__(self, url):
        self._url = url
        self._conn = None

    def get(self):
        if self._conn is None or self._conn.closed:
            self._conn = connect(self._url)
        return self._conn

    def close(self):
        if self._conn is not None:
            self._conn.close()
            self._conn = None


class PostgresJournal(BaseJournal):
    """The PostgreSQL backend: owns the writer's and the lookups'
    connections, the layout (made once, under a lock, versioned) and the
    fencing check by the lease's term. The sequencer opens it
    (``open_journal``); ``Leadership`` fences it and sets ``term`` while
    this router leads; the lease keeper takes connections of its own
    (``new_connection``)."""

    def __init__(self, url, retention_messages=1000000,
                 retention_seconds=7 * 86400, clock=None, **ignored):
        kw = {'clock': clock} if clock else {}
        super().__init__(retention_messages, retention_seconds, **kw)
        self.url = url
        self.path = self.name = journalurl.masked(url)
        # the fencing token, once ``fenced`` (a lease is kept: leasekeeper.py);
        # unfenced, the journal writes on its own (tests of the journal alone)
        self.fenced = False
        self.term = None
        self._writer = _Connection(url)
        self._lookups = _Connection(url)
        self._create()
        self.load()

    @property
    def _db(self):
        return self._writer.get()

    @property
    def _lookup_db(self):
        return self._lookups.get()

    def _sql(self, text):
        return text.replace('?', '%s')

    def _transaction(self, db):
        return db.transaction()

    def _fence(self, db):
        if not self.fenced:
            return
        term = self.term
        if term is None:
            raise lease.Deposed(f"this router does not lead {self.name}")
        if db.execute(lease.FENCE, (term,)).fetchone() is None:
            raise lease.Deposed(f"the lease of term {term} on {self.name} is over")

    def _create(self):
        db = self._db
        with db.transaction():
            db.execute("SELECT pg_advisory_xact_lock(%s)", (SCHEMA_LOCK,))
            db.execute("CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, "
                       "value TEXT NOT NULL)")
            version = int(self._meta('schema_version', db) or 0)
            if version > SCHEMA_VERSION:
                raise JournalVersionError(
                    f"journal {self.name} has layout version {version}, newer than this "
                    f"buildbot-mq-ordered understands ({SCHEMA_VERSION}): upgrade it, or "
                    "use another database")
            if version == SCHEMA_VERSION:
                return
            for text in (TABLES, lease.LEASE_TABLE):
                for statement in text.split(';'):
                    if statement.strip():
                        db.execute(statement)
            db.cursor().executemany(
                "INSERT INTO meta VALUES (%s, %s) ON CONFLICT (name) DO NOTHING",
                [('stream_id', str(uuid.uuid4())), ('last_pos', '0'),
                 ('schema_version', str(SCHEMA_VERSION))])

    def reader_connection(self):
        return connect(self.url)

    def new_connection(self):
        """A connection of its own, made again once it broke (the lease's)."""
        return _Connection(self.url)

    def close(self):
        self._writer.close()
        self._lookups.close()

    def checkpoint(self):
        """Nothing to do: the server checkpoints."""
