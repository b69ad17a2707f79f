"""The journal in a PostgreSQL database (psycopg 3): every router started
with the same database shares it, and one of them at a time - the holder of
the lease (lease.py) - writes it.

The layout is created on first use, under a transaction-level advisory
lock (routers starting together), and versioned by a ``schema_version``
row in ``meta``: an older one is converted, a newer one refused naming the
database (pglayout.py). Each lease taken begins a new term (terms.py).

Connections are made on first use and again after one broke (a restarted
server, a cut network), each with limits on the server and a bound on
every call (pglink.py) that a watchdog thread enforces (watchdog.py): no
stall of the server, of the link or of this router keeps a thread, or a
lock on the server, for ever. No lock a take-over needs outlives a
statement (pgwrites.py).
"""

from buildbot_mq_ordered.router import journalurl
from buildbot_mq_ordered.router.journal import lease
from buildbot_mq_ordered.router.journal import pglayout
from buildbot_mq_ordered.router.journal import pglink
from buildbot_mq_ordered.router.journal import pgwrites
from buildbot_mq_ordered.router.journal.base import BaseJournal
from buildbot_mq_ordered.router.journal.terms import new_term_id
from buildbot_mq_ordered.router.journal.watchdog import Watchdog

SCHEMA_VERSION = pglayout.SCHEMA_VERSION


def connect(url):
    """A connection with the writer's limits (the router's preflight)."""
    return pglink.connect(url, pglink.WRITER)


class PostgresJournal(BaseJournal):
    """The PostgreSQL backend: owns the writer's and the lookups'
    connections and their watchdog, the layout (made once, under a lock,
    versioned) and the fencing by the lease's term. The sequencer opens it
    (``open_journal``); ``Leadership`` fences it and tells it the lease's
    term while this router leads (``take_lease``); the lease keeper and the
    replay reader take connections of their own (``new_connection``,
    ``reader_connection``). Used alone (unfenced: tests), it numbers under
    no term until ``begin_term``."""

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
        self.watchdog = Watchdog()
        self.watchdog.start()
        self._writer = pglink.Link(url, pglink.WRITER, self.watchdog)
        self._lookups = pglink.Link(url, pglink.LOOKUPS, self.watchdog)
        self._staging = pgwrites.Staging()     # the writer's session's
        try:
            self._create()
            self.load()
        except BaseException:
            self.close()
            raise

    @property
    def _db(self):
        return self._writer

    @property
    def _lookup_db(self):
        return self._lookups

    def _sql(self, text):
        return text.replace('?', '%s')

    def _transaction(self, db):
        return db.transaction()

    def _fencing_term(self):
        """The term writes are fenced by (None: the journal is not shared);
        Deposed while this router leads no term."""
        if not self.fenced:
            return None
        if self.term is None:
            raise lease.Deposed(f"this router does not lead {self.name}")
        return self.term

    def _over(self, term):
        return lease.Deposed(f"the lease of term {term} on {self.name} is over")

    def begin_term(self):
        """``TermHistory.begin_term`` in one fenced statement (pgwrites.py)."""
        term = self._fencing_term()
        term_id = new_term_id()
        with self._writer.operation() as db:
            held, first_pos = pgwrites.begin_term(db, term_id, term, self._clock())
        if not held:
            raise self._over(term)
        self.began(term_id, first_pos)

    def append_batches(self, batches):
        """``BaseJournal.append_batches``, fenced in one statement (pgwrites.py)."""
        batches = [b for b in batches if b[0]]
        if not batches:
            return
        term = self._fencing_term()     # a deposed leader is told so first
        self.check_term(batches)
        with self._writer.operation() as db:
            if not pgwrites.append(db, batches, self._clock(), term, self.term_id,
                                   self._staging):
                raise self._over(term)
        if self.first_pos > self.last_pos:
            self.first_pos = batches[0][0][0][0]
        self.last_pos = batches[-1][0][-1][0]
        self._appended(len(batches))

    def prune(self):
        """``Retention.prune`` in one statement (pgwrites.py)."""
        self._appends_since_prune = 0
        term = self._fencing_term()
        bound = pgwrites.PRUNE_TIMEOUT + pglink.ANSWER_MARGIN
        with self._writer.operation(bound) as db:
            held, cutoff, n = pgwrites.prune(
                db, term, by_count=self.last_pos - self.retention_messages + 1,
                since=self._clock() - self.retention_seconds, first=self.first_pos,
                next_pos=self.last_pos + 1)
        if not held:
            raise self._over(term)
        self.first_pos = max(self.first_pos, cutoff)
        return n

    def _create(self):
        with self._writer.transaction() as db:
            pglayout.create(db, self.name, self._clock())

    def reader_connection(self, purpose='replay'):
        """A reading thread's connection: replays', or key lookups' (their
        shorter limits: a lookup holds a submit up)."""
        limits = pglink.LOOKUPS if purpose == 'lookups' else pglink.READER
        return pglink.Link(self.url, limits, self.watchdog)

    def new_connection(self):
        """The lease keeper's connection (its thread's)."""
        return pglink.Link(self.url, pglink.LEASE, self.watchdog)

    def close(self):
        self._writer.close()
        self._lookups.close()
        self.watchdog.stop()

    def checkpoint(self):
        """Nothing to do: the server checkpoints."""
