"""A PostgreSQL journal's writes, each ONE statement sent as one simple
query (one message, autocommit): the server reads it whole, runs it and
commits it whether or not the router is still there, so no lock outlives
the statement. A router that stalls or whose link hangs half-way can hold
nothing: before the message is whole the server has begun nothing, after
it the server needs nothing more from the router.

- ``APPEND``: takes the fence (the lease row FOR SHARE, while the term
  leads), then inserts the entries, upserts the counters and marks and
  moves the head, every part conditioned on the fence; answers whether it
  held (nothing is written when not). A take-over waits for the statement
  under way, no longer.
- ``PRUNE``: applies retention (retention.py says what is kept); reads the
  fence without a lock (a prune never holds a take-over back: a deposed
  leader's prune racing the take-over removes only what is past retention
  anyway), under a statement timeout of its own (a first prune after a
  long stop may remove much).
"""

from psycopg import ClientCursor

from buildbot_mq_ordered.router.journal import lease
from buildbot_mq_ordered.router.journal.base import key_text

OPEN = "SELECT"        # the fence of a journal that is not shared
_HELD = "EXISTS (SELECT FROM fence)"

APPEND = f"""
WITH fence AS ({{fence}}),
entries_in AS (
    INSERT INTO entries (pos, seq, key, data, ts)
    SELECT e.pos, e.seq, e.key, e.data, %(now)s::float8
    FROM unnest(%(pos)s::bigint[], %(seq)s::bigint[], %(key)s::text[], %(data)s::bytea[])
         AS e(pos, seq, key, data)
    WHERE {_HELD}),
keys_in AS (
    INSERT INTO keyseq (key, seq, ts)
    SELECT k.key, k.seq, %(now)s::float8
    FROM unnest(%(keys)s::text[], %(counters)s::bigint[]) AS k(key, seq)
    WHERE {_HELD}
    ON CONFLICT (key) DO UPDATE SET seq = excluded.seq, ts = excluded.ts),
marks_in AS (
    INSERT INTO producers (producer, mark, ts)
    SELECT m.producer, m.mark, %(now)s::float8
    FROM unnest(%(producers)s::text[], %(marks)s::bigint[]) AS m(producer, mark)
    WHERE {_HELD}
    ON CONFLICT (producer) DO UPDATE SET mark = excluded.mark, ts = excluded.ts),
head AS (
    UPDATE meta SET value = %(last)s WHERE name = 'last_pos' AND {_HELD})
SELECT {_HELD}
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
    DELETE FROM entries WHERE pos < (SELECT pos FROM cut) AND {_HELD} RETURNING 1),
oldest AS (
    SELECT ts FROM entries WHERE pos >= GREATEST((SELECT pos FROM cut), %(first)s::bigint)
    ORDER BY pos LIMIT 1),
keys_out AS (
    DELETE FROM keyseq WHERE ts < COALESCE((SELECT ts FROM oldest), %(since)s::float8)
    AND {_HELD}),
marks_out AS (
    DELETE FROM producers WHERE ts < %(since)s::float8 AND {_HELD})
SELECT {_HELD}, (SELECT pos FROM cut), (SELECT count(*) FROM gone)
"""


def append_args(batches, now):
    """The statement's arguments for batches (entries, producer, mark): the
    entries' columns, each key's last number, each producer's last mark."""
    cols = {'pos': [], 'seq': [], 'key': [], 'data': []}
    texts = {}
    counters = {}
    marks = {}
    for entries, producer, mark in batches:
        for pos, seq, key, data in entries:
            text = texts.get(key)
            if text is None:
                text = texts[key] = key_text(key)
            for name, value in (('pos', pos), ('seq', seq), ('key', text), ('data', data)):
                cols[name].append(value)
            counters[text] = seq
        marks[producer] = mark
    return dict(cols, now=now, last=str(cols['pos'][-1]),
                keys=list(counters), counters=list(counters.values()),
                producers=list(marks), marks=list(marks.values()))


def fence(term):
    """The append's fence for ``term`` (None: a journal that is not shared)."""
    return OPEN if term is None else lease.FENCE + " FOR SHARE"


def append(db, batches, now, term):
    """Write the batches in one statement; False if the fence did not hold
    (nothing written)."""
    args = append_args(batches, now)
    args['term'] = term
    with ClientCursor(db) as cur:
        return cur.execute(APPEND.format(fence=fence(term)), args).fetchone()[0]


def prune(db, term, by_count, since, first, next_pos):
    """Apply retention in one statement: (held, first position kept,
    entries removed)."""
    args = {'term': term, 'by_count': by_count, 'since': since, 'first': first,
            'next': next_pos}
    with ClientCursor(db) as cur:
        cur.execute(PRUNE.format(fence=OPEN if term is None else lease.FENCE), args)
        cur.nextset()
        return cur.fetchone()
