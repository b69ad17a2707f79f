"""What every journal backend does the same way: the tables' meaning,
appending numbered batches, lookups, replay reads; retention
(retention.py) and terms (terms.py).

Every batch is written in one transaction *before* the submitter is
acknowledged, so a router killed with SIGKILL and started again continues
the same positions and per-key numbers and can replay what it acknowledged.

Every journal has a stream id, a UUID made with it: a master tells a new
stream (a lost journal) by it; and every entry the id of the term that
committed it: a master tells a rewritten tail by it. Entries' data is
stored as masters encoded it (msgpack bytes).

A backend (sqlite.py, postgres.py) brings the connections, the layout and
its version, transactions and the fencing check; the SQL here and in
retention.py is written with ``?`` placeholders and runs unchanged on both.
"""

import json
import time

from buildbot_mq_ordered.router.journal.retention import Retention
from buildbot_mq_ordered.router.journal.terms import TermHistory

# keys per lookup query (SQLite's bound on parameters may be 999)
LOOKUP_CHUNK = 500
# a key as the tables hold it
key_text = json.JSONEncoder(ensure_ascii=False, separators=(',', ':')).encode


class JournalVersionError(RuntimeError):
    """The journal was written by a newer version."""


def _rows(batches, now):
    """The entries rows of batches (each key's text made once) and each
    producer's new mark."""
    texts = {}
    rows = []
    marks = {}
    for entries, producer, mark in batches:
        for pos, seq, key, data, term in entries:
            text = texts.get(key)
            if text is None:
                text = texts[key] = key_text(key)
            rows.append((pos, seq, text, data, now, term))
        marks[producer] = mark
    return rows, marks


class BaseJournal(Retention, TermHistory):
    """One journal: its head, oldest position and stream id, appends,
    lookups, reads, retention (``Retention``) and terms (``TermHistory``).
    The journal writer loads, appends and prunes; the sequencing looks keys
    up; the replay reader reads. A backend subclass provides:

    - ``_db``: the writer's connection (appends, prunes, loads);
    - ``_lookup_db``: a connection for ``last_seq(s)`` in place, never held
      up by a commit under way (used where ``lookups_in_place``; elsewhere
      the sequencing's lookup thread reads on a ``reader_connection``);
    - ``_transaction(db)``: a context manager, commit or roll back;
    - ``_fence(db)``: inside every writing transaction, raises when this
      journal may no longer write (PostgreSQL: a deposed leader);
    - ``_sql(text)``: the text with the backend's placeholders;
    - ``reader_connection()``: a new connection for another thread.
    """

    name = None    # what logs call it (a PostgreSQL URL without its password)
    last_pos = 0   # the head, once loaded
    # a commit that waits for neither a disk nor a server costs less than
    # handing it to a thread and back: the writer runs it on the reactor
    commits_in_place = False
    # a key lookup that waits for no server runs where it is asked (the
    # reactor); one that may (PostgreSQL) runs in the lookup thread
    lookups_in_place = False

    def __init__(self, retention_messages=1000000, retention_seconds=7 * 86400,
                 clock=time.time):
        super().__init__(retention_messages, retention_seconds)
        self._clock = clock

    def _x(self, db, sql, args=()):
        return db.execute(self._sql(sql), args)

    def _xmany(self, db, sql, rows):
        db.cursor().executemany(self._sql(sql), rows)

    def _meta(self, name, db=None):
        row = self._x(db or self._db, "SELECT value FROM meta WHERE name=?", (name,)).fetchone()
        return row[0] if row else None

    def load(self):
        """Read the head, the oldest position kept, the stream id and the
        recent terms (again: another router may have written since); then,
        under a lease, begin a new term if this one ended (``term_ends``)."""
        known = self.last_pos
        db = self._db
        with self._transaction(db):
            self.stream_id = self._meta('stream_id')
            self.last_pos = int(self._meta('last_pos') or 0)
            row = self._x(db, "SELECT min(pos) FROM entries").fetchone()
            self.read_terms(db)
        self.first_pos = row[0] if row[0] is not None else self.last_pos + 1
        if self.term_ends(known):
            self.begin_term()

    def producer_marks(self):
        return dict(self._x(self._db, "SELECT producer, mark FROM producers").fetchall())

    def last_seq(self, key):
        key = tuple(key)
        return self.last_seqs([key])[key]

    def last_seqs(self, keys):
        """``read_last_seqs`` on the lookups' connection, in place."""
        return self.read_last_seqs(self._lookup_db, keys)

    def read_last_seqs(self, db, keys):
        """{key: its newest number (0: never numbered)} for keys (tuples),
        in a few queries whatever their number, on a given connection."""
        keys = list(keys)
        texts = {key_text(k): k for k in keys}
        found = dict.fromkeys(keys, 0)
        names = list(texts)
        for i in range(0, len(names), LOOKUP_CHUNK):
            chunk = names[i:i + LOOKUP_CHUNK]
            marks = ','.join('?' * len(chunk))
            for text, seq in self._x(db, f"SELECT key, seq FROM keyseq WHERE key IN ({marks})",
                                     chunk).fetchall():
                found[texts[text]] = seq
        return found

    def append(self, entries, producer, mark):
        """Write a numbered batch and the producer's new mark, atomically."""
        self.append_batches([(entries, producer, mark)])

    def append_batches(self, batches):
        """Write batches (entries, producer, mark) numbered under the
        journal's term, in position order, in one transaction: all or none."""
        batches = [b for b in batches if b[0]]
        if not batches:
            return
        self.check_term(batches)
        now = self._clock()
        rows, marks = _rows(batches, now)
        # the last number of each key is its new counter
        counters = {row[2]: row[1] for row in rows}
        first, last = rows[0][0], rows[-1][0]
        db = self._db
        with self._transaction(db):
            self._fence(db)
            self._xmany(db, "INSERT INTO entries (pos, seq, key, data, ts, term) "
                            "VALUES (?,?,?,?,?,?)", rows)
            self._xmany(db, "INSERT INTO keyseq VALUES (?,?,?) ON CONFLICT (key) DO UPDATE "
                            "SET seq = excluded.seq, ts = excluded.ts",
                        [(k, seq, now) for k, seq in counters.items()])
            self._xmany(db, "INSERT INTO producers VALUES (?,?,?) ON CONFLICT (producer) "
                            "DO UPDATE SET mark = excluded.mark, ts = excluded.ts",
                        [(p, m, now) for p, m in marks.items()])
            self._x(db, "UPDATE meta SET value = ? WHERE name = 'last_pos'", (str(last),))
        if self.first_pos > self.last_pos:
            self.first_pos = first
        self.last_pos = last
        self._appended(len(batches))

    def counts(self):
        """Rows of each table (for figures and tests)."""
        return {table: self._x(self._db, f"SELECT count(*) FROM {table}").fetchone()[0]
                for table in ('entries', 'keyseq', 'producers')}

    def read(self, from_pos, limit, max_bytes=None):
        """Entries [pos, seq, key, data, term_id] from from_pos on: at most
        limit, and (the first always) while keys and data stay within max_bytes."""
        return self.read_entries(self._db, from_pos, limit, max_bytes)

    def read_entries(self, db, from_pos, limit, max_bytes=None):
        """``read`` on a given connection (the reader thread's)."""
        out = []
        size = 0
        for pos, seq, key, data, term in self._x(
                db, "SELECT pos, seq, key, data, term FROM entries WHERE pos >= ? "
                    "ORDER BY pos LIMIT ?", (from_pos, limit)):
            if max_bytes is not None:
                size += len(key) + len(data)
                if out and size > max_bytes:
                    break
            out.append([pos, seq, json.loads(key), data, term])
        return out

    def _fence(self, db):
        pass

    def _sql(self, text):
        return text
