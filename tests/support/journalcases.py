"""The journal's tests for any backend (each runs on SQLite in the unit lane,
on PostgreSQL in the integration lane), and how each backend makes an
empty journal for them."""

import os
import shutil

from twisted.trial import unittest

from buildbot_mq_ordered.router import journal as journal_module
from buildbot_mq_ordered.router.journal import open_journal
from buildbot_mq_ordered.router.numbering import Numbering
from tests.support.pgutil import fresh_database


class FakeClock:
    def __init__(self, now=1000.0):
        self.now = now

    def __call__(self):
        return self.now


class JournalTest(unittest.TestCase):
    """A journal test on some backend: ``new_location()`` names an empty
    journal of the backend (a mixin below)."""

    def open(self, location=None, **kw):
        if location is None:
            location = self.path
        j = open_journal(location, **kw)
        self.addCleanup(j.close)
        if j.term_id is None:
            # a PostgreSQL journal used alone numbers under a term once begun
            # (a shared one: at each lease taken); SQLite's began at its opening
            j.begin_term()
        return j

    def setUp(self):
        self.path = self.new_location()
        self.clock = FakeClock()

    def numbered(self, j, producer, specs, **kw):
        """Number (pseq, key) pairs with a Numbering wired to the journal
        and append them, as the sequencer does."""
        n = Numbering(last_pos=j.last_pos, producer_marks=j.producer_marks(),
                      lookup_seq=j.last_seq, term_id=j.term_id, **kw)
        entries, mark = n.assign(producer, [(p, k, str(p).encode()) for p, k in specs])
        j.append(entries, producer, mark)
        return n, entries


class OnSQLite:
    def new_location(self):
        return self.tempfile()

    def tempfile(self):
        """self.mktemp(), removed afterwards: under pytest trial's mktemp
        creates its directories in the current directory, not _trial_temp."""
        path = self.mktemp()
        folder = os.path.dirname(path)
        os.makedirs(folder, exist_ok=True)

        def remove():
            shutil.rmtree(folder, ignore_errors=True)
            try:
                os.removedirs(os.path.dirname(folder))
            except OSError:
                pass   # not empty: other tests' folders
        self.addCleanup(remove)
        return path


class OnPostgreSQL:
    def new_location(self):
        return fresh_database(self)


class Basics:

    def test_empty(self):
        j = self.open()
        self.assertEqual(j.last_pos, 0)
        self.assertEqual(j.first_pos, 1)
        self.assertEqual(j.read(1, 10), [])
        self.assertEqual(j.producer_marks(), {})
        self.assertEqual(j.last_seq(('a',)), 0)

    def test_append_and_read(self):
        j = self.open()
        j.append([(1, 1, ('a', 'b.c'), b'\x81\xa1x\x01', j.term_id),
                  (2, 1, ('', '#'), b'\xc0', j.term_id)], 'p', 2)
        j.append([(3, 2, ('a', 'b.c'), b'\x00\xff', j.term_id)], 'p', 3)
        self.assertEqual(j.last_pos, 3)
        self.assertEqual(j.first_pos, 1)
        self.assertEqual(j.read(1, 10), [
            [1, 1, ['a', 'b.c'], b'\x81\xa1x\x01', j.term_id],
            [2, 1, ['', '#'], b'\xc0', j.term_id],
            [3, 2, ['a', 'b.c'], b'\x00\xff', j.term_id],
        ])
        self.assertEqual(j.read(2, 1), [[2, 1, ['', '#'], b'\xc0', j.term_id]])
        self.assertEqual(j.read(4, 10), [])
        self.assertEqual(j.read(0, 2), j.read(1, 2))

    def test_empty_append_is_noop(self):
        j = self.open()
        j.append([], 'p', 5)
        self.assertEqual(j.last_pos, 0)
        self.assertEqual(j.producer_marks(), {})

    def test_keys_are_exact(self):
        j = self.open()
        t = j.term_id
        j.append([(1, 4, ('a.b',), b'1', t), (2, 7, ('a', 'b'), b'2', t),
                  (3, 2, ('a', ''), b'3', t), (4, 9, (), b'4', t), (5, 1, ('日本',), b'5', t)],
                 'p', 5)
        self.assertEqual(j.last_seq(('a.b',)), 4)
        self.assertEqual(j.last_seq(('a', 'b')), 7)
        self.assertEqual(j.last_seq(['a', 'b']), 7)   # list or tuple alike
        self.assertEqual(j.last_seq(('a', '')), 2)
        self.assertEqual(j.last_seq(('a',)), 0)
        self.assertEqual(j.last_seq(()), 9)
        self.assertEqual(j.last_seq(('日本',)), 1)

    def test_last_seq_is_last_in_batch(self):
        j = self.open()
        t = j.term_id
        j.append([(1, 1, ('k',), b'a', t), (2, 2, ('k',), b'b', t), (3, 3, ('k',), b'c', t)],
                 'p', 3)
        self.assertEqual(j.last_seq(('k',)), 3)

    def test_duplicate_position_rolls_back(self):
        j = self.open()
        j.append([(1, 1, ('k',), b'a', j.term_id)], 'p', 1)
        with self.assertRaises(Exception):
            j.append([(2, 2, ('k',), b'b', j.term_id), (1, 3, ('k',), b'c', j.term_id)], 'q', 9)
        self.assertEqual(j.last_pos, 1)
        self.assertEqual(j.read(1, 10), [[1, 1, ['k'], b'a', j.term_id]])
        self.assertEqual(j.producer_marks(), {'p': 1})
        self.assertEqual(j.last_seq(('k',)), 1)
        # still usable
        j.append([(2, 2, ('k',), b'b', j.term_id)], 'p', 2)
        self.assertEqual(j.last_pos, 2)


class StreamId:

    def test_a_journal_keeps_its_stream_id_and_a_new_one_gets_another(self):
        j = self.open()
        first = j.stream_id
        self.assertRegex(first, '^[0-9a-f-]{36}$')
        j.close()
        self.assertEqual(self.open().stream_id, first)
        self.assertNotEqual(self.open(self.new_location()).stream_id, first)


class Persistence:

    def test_reopen_keeps_everything(self):
        j = self.open()
        j.append([(1, 1, ('a',), b'1', j.term_id), (2, 1, ('b',), b'2', j.term_id)], 'p1', 2)
        j.append([(3, 2, ('a',), b'3', j.term_id)], 'p2', 7)
        j.close()
        j2 = self.open()
        self.assertEqual(j2.last_pos, 3)
        self.assertEqual(j2.first_pos, 1)
        self.assertEqual(j2.producer_marks(), {'p1': 2, 'p2': 7})
        self.assertEqual(j2.last_seq(('a',)), 2)
        self.assertEqual(j2.last_seq(('b',)), 1)
        self.assertEqual([e[0] for e in j2.read(1, 10)], [1, 2, 3])

    def test_producer_mark_updates(self):
        j = self.open()
        j.append([(1, 1, ('a',), b'1', j.term_id)], 'p', 1)
        j.append([(2, 2, ('a',), b'2', j.term_id)], 'p', 5)
        j.close()
        self.assertEqual(self.open().producer_marks(), {'p': 5})

    def test_positions_survive_full_prune_and_reopen(self):
        j = self.open(retention_messages=0)
        j.append([(1, 1, ('a',), b'1', j.term_id), (2, 2, ('a',), b'2', j.term_id)], 'p', 2)
        self.assertEqual(j.prune(), 2)
        self.assertEqual(j.first_pos, 3)
        self.assertEqual(j.last_pos, 2)
        j.close()
        j2 = self.open()
        self.assertEqual(j2.last_pos, 2)
        self.assertEqual(j2.first_pos, 3)
        self.assertEqual(j2.read(1, 10), [])
        self.assertEqual(j2.last_seq(('a',)), 2)   # counters outlive retention
        j2.append([(3, 3, ('a',), b'3', j2.term_id)], 'p', 3)
        self.assertEqual(j2.first_pos, 3)
        self.assertEqual(j2.read(1, 10), [[3, 3, ['a'], b'3', j2.term_id]])

    def test_numbering_continues_after_reopen(self):
        j = self.open()
        _, entries = self.numbered(j, 'p', [(1, ('a',)), (2, ('b', '')), (3, ('a',))])
        self.assertEqual([(e[0], e[1]) for e in entries], [(1, 1), (2, 1), (3, 2)])
        j.close()
        j2 = self.open()
        n, entries = self.numbered(j2, 'p', [(3, ('a',)), (4, ('a',)), (5, ('b', '')),
                                             (6, ('b',))])
        # pseq 3 was sequenced before the restart: dropped
        self.assertEqual([(e[0], e[1], e[2]) for e in entries],
                         [(4, 3, ('a',)), (5, 2, ('b', '')), (6, 1, ('b',))])
        self.assertEqual(n.producer_marks, {'p': 6})
        j2.close()
        j3 = self.open()
        self.assertEqual(j3.last_pos, 6)
        self.assertEqual(j3.producer_marks(), {'p': 6})
        self.assertEqual(j3.last_seq(('a',)), 3)

    def test_numbering_evicted_key_found_in_journal(self):
        j = self.open()
        n = Numbering(lookup_seq=j.last_seq, key_cache_size=1, term_id=j.term_id)
        for pseq, key in enumerate([('a',), ('a',), ('b',), ('c',), ('a',)], start=1):
            entries, mark = n.assign('p', [(pseq, key, b'null')])
            j.append(entries, 'p', mark)
        self.assertEqual([e[1] for e in j.read(1, 10)], [1, 2, 1, 1, 3])


class Retention:

    def fill(self, j, n, start=1, dt=0.0):
        for pos in range(start, start + n):
            j.append([(pos, pos, ('k',), str(pos).encode(), j.term_id)], 'p', pos)
            self.clock.now += dt

    def test_prune_by_count(self):
        j = self.open(retention_messages=3, clock=self.clock)
        self.fill(j, 10)
        self.assertEqual(j.prune(), 7)
        self.assertEqual(j.first_pos, 8)
        self.assertEqual([e[0] for e in j.read(1, 100)], [8, 9, 10])
        self.assertEqual(j.prune(), 0)
        j.close()
        self.assertEqual(self.open().first_pos, 8)

    def test_prune_by_age(self):
        j = self.open(retention_seconds=100, clock=self.clock)
        self.fill(j, 10, dt=30.0)     # ts 1000, 1030, ..., 1270; now 1300
        # entries at least as new as now - 100 = 1200 are kept: 1210, 1240, 1270
        self.assertEqual(j.prune(), 7)
        self.assertEqual(j.first_pos, 8)
        self.assertEqual([e[0] for e in j.read(1, 100)], [8, 9, 10])

    def test_prune_by_age_everything(self):
        j = self.open(retention_seconds=100, clock=self.clock)
        self.fill(j, 4)
        self.clock.now += 1000
        self.assertEqual(j.prune(), 4)
        self.assertEqual(j.first_pos, 5)
        self.assertEqual(j.last_pos, 4)
        self.assertEqual(j.read(1, 100), [])
        self.fill(j, 1, start=5)
        self.assertEqual(j.first_pos, 5)

    def test_stricter_rule_wins(self):
        j = self.open(retention_messages=5, retention_seconds=100, clock=self.clock)
        self.fill(j, 10, dt=30.0)
        self.assertEqual(j.first_pos, 1)
        j.prune()
        self.assertEqual(j.first_pos, 8)      # age keeps 3 < count keeps 5
        j2 = self.open(self.new_location(), retention_messages=2, retention_seconds=100,
                       clock=self.clock)
        for pos in range(1, 11):
            j2.append([(pos, pos, ('k',), b'1', j2.term_id)], 'p', pos)
        j2.prune()
        self.assertEqual(j2.first_pos, 9)     # count keeps 2 < age keeps all

    def test_counters_last_as_long_as_the_history(self):
        # keyseq is bounded by the history kept, count or age: Buildbot's
        # keys embed ids, about 57 new ones per build
        j = self.open(retention_messages=2, clock=self.clock)
        for pos, key in enumerate(['a', 'b', 'c', 'd'], start=1):
            j.append([(pos, 1, (key,), b'1', j.term_id)], 'p', pos)
            self.clock.now += 1
        j.append([(5, 2, ('a',), b'1', j.term_id)], 'p', 5)   # 'a' used again: kept
        j.prune()
        self.assertEqual([e[0] for e in j.read(1, 10)], [4, 5])
        self.assertEqual({k: j.last_seq((k,)) for k in 'abcd'},
                         {'a': 2, 'b': 0, 'c': 0, 'd': 1})
        self.assertEqual(j.counts()['keyseq'], 2)

    def test_prune_keeps_counters_and_marks(self):
        j = self.open(retention_messages=1, clock=self.clock)
        j.append([(1, 1, ('a',), b'1', j.term_id)], 'p1', 1)
        j.append([(2, 1, ('b',), b'2', j.term_id)], 'p2', 1)
        j.prune()
        self.assertEqual(j.first_pos, 2)
        self.assertEqual(j.last_seq(('a',)), 1)
        self.assertEqual(j.producer_marks(), {'p1': 1, 'p2': 1})

    def test_prune_is_due_every_so_many_appends(self):
        # the sequencer prunes when due, after publishing (issue 10: a prune
        # that raised inside append kept a committed batch from being published)
        j = self.open(retention_messages=10, clock=self.clock)
        self.fill(j, journal_module.PRUNE_EVERY - 1)
        self.assertFalse(j.prune_due)
        self.fill(j, 1, start=journal_module.PRUNE_EVERY)
        self.assertTrue(j.prune_due)
        self.assertEqual(j.first_pos, 1)
        j.prune()
        self.assertFalse(j.prune_due)
        self.assertEqual(j.first_pos, journal_module.PRUNE_EVERY - 9)
        self.assertEqual(len(j.read(1, 10**6)), 10)

    def test_unused_counters_and_marks_are_pruned_by_age(self):
        # issue 10: a producer row per master start and a counter per key
        # ever seen, never pruned
        j = self.open(retention_seconds=100, clock=self.clock)
        j.append([(1, 1, ('old',), b'1', j.term_id)], 'gone', 1)
        self.clock.now += 60
        j.append([(2, 1, ('new',), b'2', j.term_id)], 'here', 1)
        self.clock.now += 60                # 'old' and 'gone' unused for 120 s
        j.prune()
        self.assertEqual(j.producer_marks(), {'here': 1})
        self.assertEqual((j.last_seq(('old',)), j.last_seq(('new',))), (0, 1))
        self.assertEqual(j.counts(), {'entries': 1, 'keyseq': 1, 'producers': 1})
        # a use keeps them: 'here' again, 90 s later
        j.append([(3, 2, ('new',), b'3', j.term_id)], 'here', 2)
        self.clock.now += 90
        j.prune()
        self.assertEqual(j.producer_marks(), {'here': 2})
        self.assertEqual(j.last_seq(('new',)), 2)
