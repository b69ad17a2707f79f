"""The sequencer's history: SQLite (sqlite.py, the default) or PostgreSQL
(postgres.py), one interface (base.py, its retention in retention.py);
replay reads off the reactor (reader.py); the PostgreSQL leader's lease
(lease.py)."""

from buildbot_mq_ordered.router import journalurl
from buildbot_mq_ordered.router.journal.base import JournalVersionError  # noqa: F401
from buildbot_mq_ordered.router.journal.reader import JournalReader  # noqa: F401
from buildbot_mq_ordered.router.journal.retention import PRUNE_EVERY  # noqa: F401
from buildbot_mq_ordered.router.journal.sqlite import SCHEMA_VERSION  # noqa: F401
from buildbot_mq_ordered.router.journal.sqlite import Journal


def open_journal(location, **kw):
    """The journal at a SQLite path or a postgresql:// URL."""
    if journalurl.is_postgresql(location):
        # psycopg only where it is used: masters and SQLite routers need none
        from buildbot_mq_ordered.router.journal.postgres import PostgresJournal
        return PostgresJournal(location, **kw)
    return Journal(location, **kw)
