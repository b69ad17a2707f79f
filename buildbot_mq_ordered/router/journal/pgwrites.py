"""A PostgreSQL journal's writes, so that no lock of theirs outlives a
statement: a router that stalls, or whose link hangs, half-way holds
nothing that a take-over needs.

- An append is two statements. ``STAGE`` puts the batches into this
  session's own temporary tables, their data bound as bytes (one round
  trip, parsed once); a stall there holds nothing anyone else needs.
  ``COMMIT`` is ONE simple query (one message, autocommit), so the server
  reads it whole, runs it and commits it whether or not the router is
  still there: it takes the fence (the lease row FOR SHARE, while the
  term leads), moves the staged entries into the journal, upserts the
  counters and marks and moves the head, every part conditioned on the
  fence, on the staged rows being the batch and on the journal ending
  where the batch begins, under the batch's term (a database that failed
  over to a replica behind does not, and may keep the lease's row: its
  leader would leave a hole and number over lost positions under a term
  masters know); it answers each (nothing is written unless all held).
  Every entry gets the term id the batch was numbered under. A take-over
  waits for that statement, no
  longer. (The extended protocol's Execute holds its locks until the Sync
  after it, which a stalled router may never send; a literal of the data
  in the simple query costs the server about 25 ns a byte to read.)
- ``BEGIN_TERM``: records a new term (terms.py) at the head + 1, fenced
  the same way: one simple query that holds the lease row FOR SHARE for
  its own length only.
- ``PRUNE``: applies retention (retention.py says what is kept); reads the
  fence without a lock (a prune never holds a take-over back: a deposed
  leader's prune racing the take-over removes only what is past retention
  anyway), under a statement timeout of its own (a first prune after a
  long stop may remove much).
"""

import contextlib
from itertools import accumulate

import psycopg
from psycopg import ClientCursor

from buildbot_mq_ordered import wire
from buildbot_mq_ordered.router.journal import lease
from buildbot_mq_ordered.router.journal.base import key_text

OPEN = "SELECT"        # the fence of a journal that is not shared

STAGING = """
CREATE TEMP TABLE IF NOT EXISTS staged (pos BIGINT, seq BIGINT, key TEXT, data BYTEA);
CREATE TEMP TABLE IF NOT EXISTS staged_marks (producer TEXT, mark BIGINT)
"""
# bytes staged between two vacuums of the staging tables (half of the
# server's default temp_buffers), and what a row adds to its data
VACUUM_EVERY = 4 * 1024 * 1024
ROW_BYTES = 100
# what a failed append left is dropped first
STAGE = """
WITH stale AS (DELETE FROM pg_temp.staged),
stale_marks AS (DELETE FROM pg_temp.staged_marks),
marks AS (
    INSERT INTO pg_temp.staged_marks
    SELECT * FROM unnest(%(producers)s::text[], %(marks)s::bigint[]))
INSERT INTO pg_temp.staged
SELECT e.pos, e.seq, e.key, substring(%(data)s::bytea FROM e.start FOR e.size)
FROM unnest(%(pos)s::bigint[], %(seq)s::bigint[], %(key)s::text[], %(start)s::int[],
            %(size)s::int[]) AS e(pos, seq, key, start, size)
"""
_HELD = "(SELECT fenced AND staged AND head = %(before)s AND term_kept FROM ok)"
# a key's new counter is its last number, in position order
COMMIT = f"""
WITH fence AS ({{fence}}),
new AS (DELETE FROM pg_temp.staged RETURNING pos, seq, key, data),
new_marks AS (DELETE FROM pg_temp.staged_marks RETURNING producer, mark),
ok AS (SELECT EXISTS (SELECT FROM fence) AS fenced,
              (SELECT count(*) FROM new) = %(n)s AS staged,
              (SELECT value FROM meta WHERE name = 'last_pos') AS head,
              EXISTS (SELECT FROM terms WHERE term_id = %(term_id)s) AS term_kept),
entries_in AS (
    INSERT INTO entries (pos, seq, key, data, ts, term)
    SELECT pos, seq, key, data, %(now)s::float8, %(term_id)s::bigint FROM new
    WHERE {_HELD}),
keys_in AS (
    INSERT INTO keyseq (key, seq, ts)
    SELECT DISTINCT ON (key) key, seq, %(now)s::float8 FROM new WHERE {_HELD}
    ORDER BY key, pos DESC
    ON CONFLICT (key) DO UPDATE SET seq = excluded.seq, ts = excluded.ts),
marks_in AS (
    INSERT INTO producers (producer, mark, ts)
    SELECT producer, mark, %(now)s::float8 FROM new_marks WHERE {_HELD}
    ON CONFLICT (producer) DO UPDATE SET mark = excluded.mark, ts = excluded.ts),
head AS (
    UPDATE meta SET value = %(last)s WHERE name = 'last_pos' AND {_HELD})
SELECT fenced, staged, head, term_kept FROM ok
"""

_FENCED = "EXISTS (SELECT FROM fence)"
# a term begins at the head + 1, numbered by the lease's term (when shared;
# one more than the last when not)
BEGIN_TERM = f"""
WITH fence AS ({{fence}}),
began AS (
    INSERT INTO terms (term_id, first_pos, number, started)
    SELECT %(term_id)s::bigint, (SELECT value::bigint FROM meta WHERE name = 'last_pos') + 1,
           COALESCE(%(term)s::bigint, (SELECT max(number) FROM terms) + 1, 1),
           %(now)s::float8
    WHERE {_FENCED}
    RETURNING first_pos)
SELECT {_FENCED}, (SELECT first_pos FROM began)
"""
# retention: the first position kept is the later of the count's cutoff and
# the first entry young enough; counters go when unused since the oldest
# entry kept (or retention_seconds when none is), marks by age
PRUNE_TIMEOUT = 60
PRUNE = f"""
SET LOCAL statement_timeout = {PRUNE_TIMEOUT * 1000};
WITH fence AS ({{fence}}),
cut AS (
    SELECT GREATEST(%(by_count)s::bigint, COALESCE(
        (SELECT pos FROM entries WHERE ts >= %(since)s::float8 ORDER BY pos LIMIT 1),
        %(next)s::bigint)) AS pos),
gone AS (
    DELETE FROM entries WHERE pos < (SELECT pos FROM cut) AND {_FENCED} RETURNING 1),
oldest AS (
    SELECT ts FROM entries WHERE pos >= GREATEST((SELECT pos FROM cut), %(first)s::bigint)
    ORDER BY pos LIMIT 1),
keys_out AS (
    DELETE FROM keyseq WHERE ts < COALESCE((SELECT ts FROM oldest), %(since)s::float8)
    AND {_FENCED}),
marks_out AS (
    DELETE FROM producers WHERE ts < %(since)s::float8 AND {_FENCED}),
terms_out AS (
    DELETE FROM terms WHERE number < (
        SELECT number FROM terms WHERE first_pos <= GREATEST((SELECT pos FROM cut),
                                                            %(first)s::bigint)
        ORDER BY number DESC LIMIT 1)
    AND number < (SELECT number FROM terms ORDER BY number DESC LIMIT 1
                  OFFSET {wire.MAX_TERMS - 1})
    AND {_FENCED})
SELECT {_FENCED}, (SELECT pos FROM cut), (SELECT count(*) FROM gone)
"""


def append_args(batches):
    """``STAGE``'s arguments for batches (entries, producer, mark): the
    entries' columns, their data as one string of bytes (each entry's
    start and size in it: one parameter, not an array of them, which
    psycopg adapts several times slower), each producer's last mark."""
    entries = [entry for batch in batches for entry in batch[0]]
    texts = {key: key_text(key) for key in {entry[2] for entry in entries}}
    sizes = [len(entry[3]) for entry in entries]
    marks = {producer: mark for _, producer, mark in batches}
    return {'pos': [entry[0] for entry in entries], 'seq': [entry[1] for entry in entries],
            'key': [texts[entry[2]] for entry in entries],
            'start': list(accumulate(sizes[:-1], initial=1)),    # SQL counts from 1
            'size': sizes, 'data': b''.join(entry[3] for entry in entries),
            'producers': list(marks), 'marks': list(marks.values())}


def fence(term):
    """The append's fence for ``term`` (None: a journal that is not shared)."""
    return OPEN if term is None else lease.FENCE + " FOR SHARE"


def append(db, batches, now, term, term_id, staging):
    """Write the batches, numbered under ``term_id``: True, or False if the
    fence did not hold (nothing written)."""
    args = append_args(batches)
    staging.stage(db, args)
    before = args['pos'][0] - 1
    with ClientCursor(db) as cur:
        fenced, staged, head, term_kept = cur.execute(
            COMMIT.format(fence=fence(term)),
            {'term': term, 'term_id': term_id, 'n': len(args['pos']), 'now': now,
             'last': str(args['pos'][-1]), 'before': str(before)}).fetchone()
    if fenced and not staged:
        raise RuntimeError("the staged batch was not whole: nothing written")
    if fenced and (head != str(before) or not term_kept):
        moved = f"its head is {head}, not {before}" if head != str(before) else \
            f"its term {term_id} is gone"
        raise JournalMoved(f"the journal is not where this router left it ({moved}: did its "
                           "database fail over to a replica behind?): nothing written")
    return fenced


class JournalMoved(RuntimeError):
    """The journal's head or term is not the one this router numbered
    after: the next load begins a new term from the head it finds."""


class Staging:
    """A session's staging tables: made on first use, and vacuumed once
    every VACUUM_EVERY bytes staged - no autovacuum reaches a temporary
    table, every append leaves its rows dead there, and past temp_buffers
    (8 MB by default) they spill to files (a 100-message append went from
    4 to 40 ms within 1,000 appends)."""

    def __init__(self):
        self._since_vacuum = 0

    def stage(self, db, args):
        if self._since_vacuum >= VACUUM_EVERY:
            self._since_vacuum = 0
            with contextlib.suppress(psycopg.errors.UndefinedTable):   # a new session
                db.execute("VACUUM pg_temp.staged, pg_temp.staged_marks")
        try:
            db.execute(STAGE, args)
        except psycopg.errors.UndefinedTable:    # a new session
            db.execute(STAGING)
            db.execute(STAGE, args)
        self._since_vacuum += len(args['data']) + ROW_BYTES * len(args['pos'])


def begin_term(db, term_id, term, now):
    """Record a new term from the head on, in one statement fenced like an
    append: (held, its first position)."""
    with ClientCursor(db) as cur:
        return cur.execute(BEGIN_TERM.format(fence=fence(term)),
                           {'term_id': term_id, 'term': term, 'now': now}).fetchone()


def prune(db, term, by_count, since, first, next_pos):
    """Apply retention in one statement: (held, first position kept,
    entries removed)."""
    args = {'term': term, 'by_count': by_count, 'since': since, 'first': first,
            'next': next_pos}
    with ClientCursor(db) as cur:
        cur.execute(PRUNE.format(fence=OPEN if term is None else lease.FENCE), args)
        cur.nextset()
        return cur.fetchone()
