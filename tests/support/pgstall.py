"""The journal's database stalling key lookups: another session holds the
per-key counters' table (``keyseq``) locked, so every read of a key's
counter waits on the server; and which of the routers' queries wait."""

from tests.support.pgutil import journal_rows

LOCK_TIMEOUT = '10s'     # taking the lock itself, behind the writer's commits


class KeyseqLock:
    """Owns the connection that holds ``keyseq`` ACCESS EXCLUSIVE between
    ``lock()`` and ``unlock()`` (blocking calls: from a thread)."""

    def __init__(self, url):
        self.url = url
        self._conn = None

    def lock(self):
        import psycopg
        conn = psycopg.connect(self.url, connect_timeout=10)
        conn.execute(f"SET lock_timeout = '{LOCK_TIMEOUT}'")
        conn.execute("LOCK TABLE keyseq IN ACCESS EXCLUSIVE MODE")
        self._conn = conn

    def unlock(self):
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.rollback()
            conn.close()


def lookups_waiting(url):
    """Queries reading keyseq that wait on a lock now (key lookups)."""
    (n,), = journal_rows(url, "SELECT count(*) FROM pg_stat_activity "
                              "WHERE datname = current_database() AND wait_event_type = 'Lock' "
                              "AND query ILIKE 'select%keyseq%'")
    return n
