"""Journal on SQLite: the sequencer's history, persistence and retention
(the interface's tests, tests/support/journalcases.py), and what only SQLite
has (its file layout, a full disk, :memory:)."""

import sqlite3

from twisted.internet import defer

from buildbot_mq_ordered import wire
from buildbot_mq_ordered.router import journal as journal_module
from buildbot_mq_ordered.router.journal import Journal
from buildbot_mq_ordered.router.journal import JournalReader
from buildbot_mq_ordered.router.journal import base
from tests.support.journalcases import Basics
from tests.support.journalcases import JournalTest
from tests.support.journalcases import OnSQLite
from tests.support.journalcases import Persistence
from tests.support.journalcases import Retention
from tests.support.journalcases import StreamId
from tests.support.termcases import OldLayoutSQLite
from tests.support.termcases import Terms


class Layout(OnSQLite, JournalTest):
    """The file's layout version (PRAGMA user_version)."""

    OLD_SCHEMA = """
        CREATE TABLE entries (pos INTEGER PRIMARY KEY, seq INTEGER NOT NULL,
            key TEXT NOT NULL, data TEXT NOT NULL, ts REAL NOT NULL);
        CREATE TABLE keyseq (key TEXT PRIMARY KEY, seq INTEGER NOT NULL) WITHOUT ROWID;
        CREATE TABLE producers (producer TEXT PRIMARY KEY, mark INTEGER NOT NULL)
            WITHOUT ROWID;
        CREATE TABLE meta (name TEXT PRIMARY KEY, value INTEGER NOT NULL) WITHOUT ROWID;
        INSERT INTO entries VALUES (1, 1, '["a"]', '{"x":[1,"ü"]}', 1000.0);
        INSERT INTO entries VALUES (2, 2, '["a"]', 'null', 1000.0);
        INSERT INTO keyseq VALUES ('["a"]', 2);
        INSERT INTO producers VALUES ('p', 2);
        INSERT INTO meta VALUES ('last_pos', 2);
    """

    def test_new_file_has_the_current_version(self):
        self.open()
        db = sqlite3.connect(self.path)
        self.addCleanup(db.close)
        self.assertEqual(db.execute("PRAGMA user_version").fetchone()[0],
                         journal_module.SCHEMA_VERSION)

    def test_journal_of_0_1_0_is_converted(self):
        # 0.1.0 stored data as JSON text; masters now send and expect msgpack
        db = sqlite3.connect(self.path)
        db.executescript(self.OLD_SCHEMA)
        db.close()
        self.clock.now = 5000.0    # the entries were written at 1000
        j = self.open(clock=self.clock, retention_seconds=3000)
        entries = j.read(1, 10)
        self.assertEqual([(e[0], e[1], e[2]) for e in entries], [(1, 1, ['a']), (2, 2, ['a'])])
        self.assertEqual([wire.decode_data(e[3]) for e in entries], [{'x': [1, 'ü']}, None])
        self.assertEqual((j.last_pos, j.producer_marks(), j.last_seq(('a',))), (2, {'p': 2}, 2))
        self.assertRegex(j.stream_id, '^[0-9a-f]{8}-')
        stream_id = j.stream_id
        j.close()
        j = self.open(clock=self.clock, retention_seconds=3000)
        self.assertEqual((j.read(1, 10), j.stream_id), (entries, stream_id))   # once
        # marks and counters count as used at the conversion, not at the epoch:
        # the entries (written at 1000) go, they stay
        j.prune()
        self.assertEqual((j.first_pos, j.producer_marks(), j.last_seq(('a',))), (3, {'p': 2}, 2))

    def test_newer_layout_is_refused(self):
        db = sqlite3.connect(self.path)
        db.execute(f"PRAGMA user_version = {journal_module.SCHEMA_VERSION + 1}")
        db.close()
        with self.assertRaises(journal_module.JournalVersionError) as cm:
            Journal(self.path)
        self.assertIn(self.path, str(cm.exception))
        self.assertIn('newer', str(cm.exception))


class DiskFull(OnSQLite, JournalTest):

    def test_disk_full_is_reported_as_what_it_is(self):
        # issue 10: SQLite rolls back by itself on SQLITE_FULL; the journal's
        # own ROLLBACK then failed with "cannot rollback - no transaction is
        # active", and that was all anyone saw
        j = self.open()
        j.append([(1, 1, ('k',), b'x', j.term_id)], 'p', 1)
        pages = j._db.execute("PRAGMA page_count").fetchone()[0]
        j._db.execute(f"PRAGMA max_page_count = {pages + 1}")
        with self.assertRaises(sqlite3.OperationalError) as cm:
            for pos in range(2, 50):
                j.append([(pos, pos, ('k',), b'x' * 3000, j.term_id)], 'p', pos)
        self.assertIn('full', str(cm.exception))
        # the failed batch left nothing behind; room again: it goes through
        failed = pos
        self.assertEqual(j.last_pos, failed - 1)
        self.assertEqual([e[0] for e in j.read(1, 100)], list(range(1, failed)))
        j._db.execute("PRAGMA max_page_count = 1000000")
        j.append([(failed, failed, ('k',), b'y', j.term_id)], 'p', failed)
        self.assertEqual(j.read(failed, 1)[0][3], b'y')


class SQLiteOnly(OnSQLite, JournalTest):

    def test_prune_finds_what_to_drop_without_scanning(self):
        # it runs on the router's reactor every 200 appends: min(ts) over a
        # big journal there put 40 ms into the bench's p99 at 600 msg/s
        j = self.open(clock=self.clock)

        def plan(sql, *args):
            return ' '.join(row[3] for row in j._db.execute("EXPLAIN QUERY PLAN " + sql, args))
        self.assertIn('INDEX keyseq_ts', plan("DELETE FROM keyseq WHERE ts < ?", 1.0))
        self.assertIn('INDEX producers_ts',
                      plan("DELETE FROM producers WHERE ts < ?", 1.0))
        self.assertIn('SEARCH entries USING INTEGER PRIMARY KEY',
                      plan("SELECT ts FROM entries WHERE pos >= ? ORDER BY pos LIMIT 1", 1))

    def test_memory_journal(self):
        j = self.open(':memory:', retention_messages=1)
        j.append([(1, 1, ('a',), b'1', j.term_id), (2, 2, ('a',), b'2', j.term_id)], 'p', 2)
        self.assertEqual(j.prune(), 1)
        self.assertEqual(j.read(1, 10), [[2, 2, ['a'], b'2', j.term_id]])


class Lookups(OnSQLite, JournalTest):
    """Keys' newest numbers, many at once (issue 21: the sequencing looks up
    every key missing from its cache in one batched read)."""

    def test_many_keys_in_few_queries_and_keys_never_numbered_are_0(self):
        j = self.open()
        keys = [('k', str(i)) for i in range(base.LOOKUP_CHUNK * 2 + 7)]
        j.append([(i + 1, 3, key, b'x', j.term_id) for i, key in enumerate(keys[::2])], 'p', 1)
        queries = []
        j._lookup_db.set_trace_callback(queries.append)
        seqs = j.last_seqs(keys + [('new', 'é')])
        self.assertEqual(seqs, {**{k: 3 if i % 2 == 0 else 0 for i, k in enumerate(keys)},
                                ('new', 'é'): 0})
        self.assertEqual(len(queries), 3)

    @defer.inlineCallbacks
    def test_a_lookup_reader_reads_in_its_thread_on_its_connection(self):
        j = self.open()
        j.append([(1, 1, ('a',), b'x', j.term_id)], 'p', 1)
        lookups = JournalReader(j, 'journal-lookups')
        self.addCleanup(lookups.stop)
        self.assertEqual((yield lookups.last_seqs([('a',), ('b',)])), {('a',): 1, ('b',): 0})
        self.assertIsNot(lookups._db, None)
        self.assertIsNot(lookups._db, j._lookup_db)


# the interface's tests, on SQLite
for _tests in (Basics, StreamId, Persistence, Retention):
    _name = _tests.__name__ + 'SQLite'
    globals()[_name] = type(_name, (OnSQLite, _tests, JournalTest), {})
del _tests, _name


class TermsSQLite(OnSQLite, OldLayoutSQLite, Terms, JournalTest):
    """The journal's terms (tests/support/termcases.py), on SQLite."""
