"""The journal's terms, on any backend (issue 22): every entry carries the
id of the term that committed it, the journal records where each term
began, and a journal of 0.4's layout is converted with one "legacy" term.
Each runs on SQLite in the unit lane, on PostgreSQL in the integration
lane; ``OldLayoutSQLite`` and ``OldLayoutPostgreSQL`` write 0.4's layout
by SQL for the conversion's tests."""

import sqlite3

from buildbot_mq_ordered import wire
from buildbot_mq_ordered.router.journal import sqlitelayout

STREAM_ID = '0e8f5d0c-4b1e-4a57-9d4e-2f1d6a0b7c31'


class Terms:

    def test_every_entry_carries_the_term_that_committed_it(self):
        j = self.open()
        first = j.term_id
        self.assertTrue(wire.is_term_id(first))
        self.assertEqual(list(j.terms), [(first, 1)])
        j.append([(1, 1, ('a',), b'1', first), (2, 2, ('a',), b'2', first)], 'p', 2)
        j.begin_term()
        second = j.term_id
        self.assertNotEqual(second, first)
        self.assertEqual(list(j.terms), [(first, 1), (second, 3)])
        j.append([(3, 3, ('a',), b'3', second)], 'p', 3)
        self.assertEqual([(e[0], e[4]) for e in j.read(1, 10)],
                         [(1, first), (2, first), (3, second)])
        j.close()
        # read again with the journal; a new term begins (a new router)
        j2 = self.open()
        self.assertEqual(list(j2.terms)[:2], [(first, 1), (second, 3)])
        self.assertEqual(list(j2.terms)[2:], [(j2.term_id, 4)])

    def test_a_batch_numbered_under_another_term_is_refused_and_writes_nothing(self):
        j = self.open()
        other = j.term_id % wire.MAX_TERM_ID + 1
        with self.assertRaises(RuntimeError) as cm:
            j.append([(1, 1, ('a',), b'1', other)], 'p', 1)
        self.assertIn(str(other), str(cm.exception))
        self.assertEqual((j.last_pos, j.read(1, 10), j.producer_marks()), (0, [], {}))

    def test_terms_go_with_the_history_but_the_most_recent_stay(self):
        j = self.open(retention_messages=1)
        ids = []
        for pos in range(1, wire.MAX_TERMS + 6):
            j.begin_term()
            ids.append(j.term_id)
            j.append([(pos, pos, ('k',), b'x', j.term_id)], 'p', pos)
        j.prune()
        j.load()
        self.assertEqual([t for t, _ in j.terms], ids[-wire.MAX_TERMS:])
        self.assertEqual(self.count_terms(j), wire.MAX_TERMS)
        # fewer than MAX_TERMS: all stay, even those with no entry kept
        j = self.open(self.new_location(), retention_messages=1)
        for pos in (1, 2):
            j.append([(pos, pos, ('k',), b'x', j.term_id)], 'p', pos)
            j.begin_term()
        j.prune()
        j.load()
        self.assertEqual([p for _, p in j.terms], [1, 2, 3])

    def lose_tail(self, j, head):
        """What a database that failed over to a replica behind shows: the
        entries after ``head`` gone, its head back at ``head``."""
        j._x(j._db, "DELETE FROM entries WHERE pos > ?", (head,))
        j._x(j._db, "UPDATE meta SET value = ? WHERE name = 'last_pos'", (str(head),))

    def test_a_journal_that_lost_its_tail_under_a_lease_begins_a_new_term_at_its_load(self):
        # the lease's row comes over with the replica: its holder may renew
        # it, and no take-over begins a term
        j = self.open()
        j.term = 1     # as under a lease (the fence itself: PostgreSQL's own tests)
        first = j.term_id
        j.append([(p, p, ('k',), b'x', first) for p in (1, 2, 3)], 'p', 3)
        j.load()
        self.assertEqual(j.term_id, first)      # where it was left: the same term
        self.lose_tail(j, 1)
        j.load()
        self.assertNotEqual(j.term_id, first)
        self.assertEqual(list(j.terms), [(first, 1), (j.term_id, 2)])
        j.append([(2, 2, ('k',), b'y', j.term_id)], 'p', 2)
        self.assertEqual([(e[0], e[4]) for e in j.read(1, 10)], [(1, first), (2, j.term_id)])

    def test_a_term_gone_from_the_journal_ends_at_its_load(self):
        j = self.open()
        j.term = 1
        first = j.term_id
        j._x(j._db, "DELETE FROM terms WHERE term_id = ?", (first,))
        j.load()
        self.assertNotEqual(j.term_id, first)
        self.assertEqual(list(j.terms), [(j.term_id, 1)])

    def count_terms(self, j):
        return j._x(j._db, "SELECT count(*) FROM terms").fetchone()[0]

    def test_a_journal_of_0_4_is_converted_with_one_legacy_term(self):
        # positions 1 and 2 were pruned: the legacy term begins at 3
        self.write_old_layout(positions=[3, 4, 5], last_pos=5)
        j = self.open()
        self.assertEqual(self.layout_version(), self.current_version())
        entries = j.read(1, 10)
        legacy = entries[0][4]
        self.assertTrue(wire.is_term_id(legacy))
        self.assertEqual([(e[0], e[1], e[2], e[3], e[4]) for e in entries],
                         [(p, p, ['k'], b'\xc0', legacy) for p in (3, 4, 5)])
        self.assertEqual(list(j.terms), [(legacy, 3), (j.term_id, 6)])
        self.assertNotEqual(j.term_id, legacy)
        self.assertEqual((j.stream_id, j.last_pos, j.first_pos, j.producer_marks(),
                          j.last_seq(('k',))), (STREAM_ID, 5, 3, {'p': 5}, 5))
        j.append([(6, 6, ('k',), b'\xc0', j.term_id)], 'p', 6)
        converted = j.read(1, 10)
        j.close()
        # converted once: opened again, the same entries and legacy term
        j = self.open()
        self.assertEqual(j.read(1, 10), converted)
        self.assertEqual(list(j.terms)[0], (legacy, 3))
        self.assertEqual(len(j.terms), 3)

    def test_a_journal_of_0_4_with_no_entry_kept_gets_a_legacy_term_at_its_head(self):
        self.write_old_layout(positions=[], last_pos=7)
        j = self.open()
        (legacy, first), current = j.terms
        self.assertEqual((first, current), (8, (j.term_id, 8)))
        self.assertNotEqual(legacy, j.term_id)


class OldLayoutSQLite:
    """0.2 to 0.4's SQLite layout (user_version 1), written by SQL."""

    LAYOUT_1 = """
        CREATE TABLE entries (pos INTEGER PRIMARY KEY, seq INTEGER NOT NULL,
            key TEXT NOT NULL, data BLOB NOT NULL, ts REAL NOT NULL);
        CREATE TABLE keyseq (key TEXT PRIMARY KEY, seq INTEGER NOT NULL,
            ts REAL NOT NULL) WITHOUT ROWID;
        CREATE TABLE producers (producer TEXT PRIMARY KEY, mark INTEGER NOT NULL,
            ts REAL NOT NULL) WITHOUT ROWID;
        CREATE TABLE meta (name TEXT PRIMARY KEY, value NOT NULL) WITHOUT ROWID;
        CREATE INDEX keyseq_ts ON keyseq (ts);
        CREATE INDEX producers_ts ON producers (ts);
        PRAGMA user_version = 1;
    """

    def write_old_layout(self, positions, last_pos):
        db = sqlite3.connect(self.path)
        db.executescript(self.LAYOUT_1)
        with db:
            db.executemany("INSERT INTO entries VALUES (?, ?, '[\"k\"]', ?, 1000.0)",
                           [(p, p, b'\xc0') for p in positions])
            db.execute("INSERT INTO keyseq VALUES ('[\"k\"]', ?, 1000.0)", (last_pos,))
            db.execute("INSERT INTO producers VALUES ('p', ?, 1000.0)", (last_pos,))
            db.executemany("INSERT INTO meta VALUES (?, ?)",
                           [('stream_id', STREAM_ID), ('last_pos', last_pos)])
        db.close()

    def current_version(self):
        return sqlitelayout.SCHEMA_VERSION

    def layout_version(self):
        db = sqlite3.connect(self.path)
        try:
            return db.execute("PRAGMA user_version").fetchone()[0]
        finally:
            db.close()


class OldLayoutPostgreSQL:
    """0.3 and 0.4's PostgreSQL layout (schema_version 1), written by SQL."""

    LAYOUT_1 = """
        CREATE TABLE meta (name TEXT PRIMARY KEY, value TEXT NOT NULL);
        CREATE TABLE entries (pos BIGINT PRIMARY KEY, seq BIGINT NOT NULL,
            key TEXT NOT NULL, data BYTEA NOT NULL, ts DOUBLE PRECISION NOT NULL);
        CREATE TABLE keyseq (key TEXT PRIMARY KEY, seq BIGINT NOT NULL,
            ts DOUBLE PRECISION NOT NULL);
        CREATE TABLE producers (producer TEXT PRIMARY KEY, mark BIGINT NOT NULL,
            ts DOUBLE PRECISION NOT NULL);
        CREATE INDEX keyseq_ts ON keyseq (ts);
        CREATE INDEX producers_ts ON producers (ts);
        CREATE TABLE lease (id INTEGER PRIMARY KEY CHECK (id = 1), term BIGINT NOT NULL,
            holder TEXT NOT NULL, expires TIMESTAMPTZ NOT NULL);
        INSERT INTO lease VALUES (1, 4, 'old-router', '-infinity');
    """

    def write_old_layout(self, positions, last_pos):
        import psycopg
        with psycopg.connect(self.path) as db:
            for statement in self.LAYOUT_1.split(';'):
                if statement.strip():
                    db.execute(statement)
            db.cursor().executemany(
                "INSERT INTO entries VALUES (%s, %s, '[\"k\"]', %s, 1000.0)",
                [(p, p, b'\xc0') for p in positions])
            db.execute("INSERT INTO keyseq VALUES ('[\"k\"]', %s, 1000.0)", (last_pos,))
            db.execute("INSERT INTO producers VALUES ('p', %s, 1000.0)", (last_pos,))
            db.cursor().executemany("INSERT INTO meta VALUES (%s, %s)",
                                    [('stream_id', STREAM_ID), ('last_pos', str(last_pos)),
                                     ('schema_version', '1')])

    def current_version(self):
        from buildbot_mq_ordered.router.journal import pglayout
        return pglayout.SCHEMA_VERSION

    def layout_version(self):
        import psycopg
        with psycopg.connect(self.path) as db:
            return int(db.execute("SELECT value FROM meta WHERE name = 'schema_version'")
                       .fetchone()[0])

