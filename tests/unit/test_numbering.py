"""Numbering: stream positions, per-key sequence numbers, producer dedup."""

from hypothesis import given
from hypothesis import settings
from hypothesis import strategies as st
from twisted.trial import unittest

from buildbot_mq_ordered.router.numbering import Numbering


class RecordingStore:
    """A dict-backed journal stand-in: remembers every key's last seq as
    assign produced it, and answers lookup_seq from that."""

    def __init__(self):
        self.seqs = {}
        self.lookups = []

    def lookup(self, key):
        self.lookups.append(key)
        return self.seqs.get(key, 0)

    def record(self, entries):
        for _pos, seq, key, _payload, _term in entries:
            self.seqs[key] = seq


def msgs(*specs):
    """(pseq, key) pairs -> (pseq, key, payload) triples."""
    return [(pseq, key, f'"{pseq}"') for pseq, key in specs]


class Positions(unittest.TestCase):

    def test_positions_increment_across_batches_and_producers(self):
        n = Numbering()
        entries, mark = n.assign('p1', msgs((1, ('a',)), (2, ('a',))))
        self.assertEqual([x[0] for x in entries], [1, 2])
        self.assertEqual(mark, 2)
        entries, mark = n.assign('p2', msgs((1, ('b',))))
        self.assertEqual([x[0] for x in entries], [3])
        self.assertEqual(mark, 1)
        self.assertEqual(n.last_pos, 3)

    def test_starts_after_last_pos(self):
        n = Numbering(last_pos=41, term_id=7)
        entries, _ = n.assign('p', msgs((1, ('a',))))
        self.assertEqual(entries, [(42, 1, ('a',), '"1"', 7)])
        self.assertEqual(n.last_pos, 42)

    def test_entry_shape_keeps_key_and_payload_and_carries_the_term(self):
        n = Numbering(term_id=2 ** 63 - 1)
        entries, _ = n.assign('p', [(7, ('x', ''), '{"a":1}')])
        self.assertEqual(entries, [(1, 1, ('x', ''), '{"a":1}', 2 ** 63 - 1)])

    def test_empty_batch(self):
        n = Numbering(last_pos=5)
        self.assertEqual(n.assign('p', []), ([], 0))
        self.assertEqual(n.last_pos, 5)
        self.assertNotIn('p', n.producer_marks)


class PerKeySeq(unittest.TestCase):

    def test_seq_counts_per_exact_key(self):
        n = Numbering()
        keys = [('a',), ('a', 'b'), ('a',), ('a.b',), ('a', 'b'), ('a',),
                ('a', ''), ('',), (), ('a', ''), ('#',), ('*',), ('a b',), ()]
        entries, _ = n.assign('p', msgs(*enumerate(keys, start=1)))
        self.assertEqual([x[1] for x in entries],
                         [1, 1, 2, 1, 2, 3, 1, 1, 1, 2, 1, 1, 1, 2])
        self.assertEqual(n.last_seq(('a',)), 3)
        self.assertEqual(n.last_seq(('a', 'b')), 2)
        self.assertEqual(n.last_seq(('a.b',)), 1)
        self.assertEqual(n.last_seq(('a', '')), 2)
        self.assertEqual(n.last_seq(('',)), 1)
        self.assertEqual(n.last_seq(()), 2)
        self.assertEqual(n.last_seq(('never',)), 0)

    def test_seq_continues_across_batches(self):
        n = Numbering()
        for i in range(1, 6):
            entries, _ = n.assign('p', msgs((i, ('k',))))
            self.assertEqual(entries[0][1], i)
            self.assertEqual(entries[0][0], i)

    def test_seq_shared_across_producers(self):
        n = Numbering()
        n.assign('p1', msgs((1, ('k',))))
        entries, _ = n.assign('p2', msgs((1, ('k',))))
        self.assertEqual(entries[0][1], 2)

    def test_lookup_seq_used_for_unknown_key(self):
        n = Numbering(lookup_seq=lambda key: {('old',): 9}.get(key, 0))
        self.assertEqual(n.last_seq(('old',)), 9)
        entries, _ = n.assign('p', msgs((1, ('old',)), (2, ('new',))))
        self.assertEqual([x[1] for x in entries], [10, 1])


class ProducerDedup(unittest.TestCase):

    def test_resubmission_dropped_mark_returned(self):
        n = Numbering()
        entries, mark = n.assign('p', msgs((1, ('a',)), (2, ('a',)), (3, ('a',))))
        self.assertEqual(len(entries), 3)
        self.assertEqual(mark, 3)
        entries, mark = n.assign('p', msgs((2, ('a',)), (3, ('a',))))
        self.assertEqual(entries, [])
        self.assertEqual(mark, 3)
        self.assertEqual(n.last_pos, 3)
        self.assertEqual(n.last_seq(('a',)), 3)

    def test_partial_resubmission(self):
        n = Numbering(term_id=5)
        n.assign('p', msgs((1, ('a',)), (2, ('a',))))
        entries, mark = n.assign('p', msgs((2, ('a',)), (3, ('a',)), (4, ('b',))))
        self.assertEqual(entries, [(3, 3, ('a',), '"3"', 5), (4, 1, ('b',), '"4"', 5)])
        self.assertEqual(mark, 4)
        self.assertEqual(n.producer_marks, {'p': 4})

    def test_marks_are_per_producer(self):
        n = Numbering()
        n.assign('p1', msgs((5, ('a',))))
        entries, mark = n.assign('p2', msgs((1, ('a',))))
        self.assertEqual(len(entries), 1)
        self.assertEqual(mark, 1)
        self.assertEqual(n.producer_marks, {'p1': 5, 'p2': 1})

    def test_initial_marks(self):
        marks = {'p': 10}
        n = Numbering(last_pos=100, producer_marks=marks)
        entries, mark = n.assign('p', msgs((9, ('a',)), (10, ('a',)), (11, ('a',))))
        self.assertEqual([x[0] for x in entries], [101])
        self.assertEqual(mark, 11)
        self.assertEqual(marks, {'p': 10}, "caller's dict must not be mutated")

    def test_gap_in_producer_seq_accepted(self):
        # the producer's outbox dropped its oldest: later numbers still count
        n = Numbering()
        n.assign('p', msgs((1, ('a',))))
        entries, mark = n.assign('p', msgs((7, ('a',))))
        self.assertEqual(len(entries), 1)
        self.assertEqual(mark, 7)

    def test_only_resubmissions_from_unknown_producer(self):
        n = Numbering()
        entries, mark = n.assign('p', msgs((0, ('a',))))
        self.assertEqual(entries, [])
        self.assertEqual(mark, 0)


class KeyCache(unittest.TestCase):

    def test_cache_is_bounded_and_evicted_key_continues(self):
        store = RecordingStore()
        n = Numbering(lookup_seq=store.lookup, key_cache_size=2)

        def submit(pseq, key):
            entries, _ = n.assign('p', msgs((pseq, key)))
            store.record(entries)   # what the journal would write
            return entries[0][1]

        self.assertEqual(submit(1, ('a',)), 1)
        self.assertEqual(submit(2, ('a',)), 2)
        self.assertEqual(submit(3, ('b',)), 1)
        self.assertEqual(submit(4, ('c',)), 1)   # evicts ('a',)
        self.assertLessEqual(len(n._key_seq), 2)
        self.assertNotIn(('a',), n._key_seq)
        store.lookups.clear()
        self.assertEqual(submit(5, ('a',)), 3)   # from the store, not 1 again
        self.assertIn(('a',), store.lookups)
        self.assertEqual(n.last_seq(('a',)), 3)
        self.assertEqual(n.last_seq(('b',)), 1)  # evicted now; the store knows

    def test_recently_used_key_is_kept(self):
        store = RecordingStore()
        n = Numbering(lookup_seq=store.lookup, key_cache_size=2)
        for i, key in enumerate([('a',), ('b',), ('a',), ('c',)], start=1):
            entries, _ = n.assign('p', msgs((i, key)))
            store.record(entries)
        # ('b',) was least recently used, ('a',) refreshed
        self.assertIn(('a',), n._key_seq)
        self.assertNotIn(('b',), n._key_seq)
        store.lookups.clear()
        entries, _ = n.assign('p', msgs((5, ('a',))))
        self.assertEqual(entries[0][1], 3)
        self.assertEqual(store.lookups, [])

    def test_batch_larger_than_cache(self):
        store = RecordingStore()
        n = Numbering(lookup_seq=store.lookup, key_cache_size=1)
        keys = [('a',), ('b',), ('a',), ('c',), ('b',)]
        entries, _ = n.assign('p', msgs(*enumerate(keys, start=1)))
        store.record(entries)
        self.assertEqual([x[1] for x in entries], [1, 1, 2, 1, 2])
        self.assertLessEqual(len(n._key_seq), 1)
        entries, _ = n.assign('p', msgs((6, ('a',)), (7, ('b',)), (8, ('c',))))
        self.assertEqual([x[1] for x in entries], [3, 3, 2])


keys = st.tuples() | st.tuples(st.sampled_from(['a', 'b', '', 'a.b', '#'])) | \
    st.tuples(st.sampled_from(['a', '']), st.sampled_from(['b', '', '*']))


@st.composite
def submissions(draw):
    """Batches from a few producers, each producer counting 1, 2, 3, ...,
    with random resubmissions of earlier (already numbered or not) ranges."""
    producers = ['p1', 'p2', 'p3'][:draw(st.integers(1, 3))]
    next_pseq = {p: 1 for p in producers}
    sent = {p: [] for p in producers}
    batches = []
    for _ in range(draw(st.integers(1, 10))):
        p = draw(st.sampled_from(producers))
        batch = []
        if sent[p] and draw(st.booleans()):
            # resubmit a suffix of what was sent (after a reconnect)
            start = draw(st.integers(0, len(sent[p]) - 1))
            batch.extend(sent[p][start:])
        for _ in range(draw(st.integers(0, 5))):
            m = (next_pseq[p], draw(keys), f'"{p}-{next_pseq[p]}"')
            next_pseq[p] += 1
            sent[p].append(m)
            batch.append(m)
        batches.append((p, batch))
    return batches


class Properties(unittest.TestCase):

    @given(submissions(), st.integers(1, 4), st.integers(0, 50))
    @settings(max_examples=200, deadline=None)
    def test_every_message_once_positions_and_seqs_dense(self, batches, cache, base):
        store = RecordingStore()
        n = Numbering(last_pos=base, lookup_seq=store.lookup, key_cache_size=cache)
        all_entries = []
        for producer, batch in batches:
            before = n.producer_marks.get(producer, 0)
            entries, mark = n.assign(producer, batch)
            store.record(entries)
            all_entries.extend(entries)
            self.assertLessEqual(len(n._key_seq), cache)
            self.assertEqual(mark, max([m[0] for m in batch] + [before]))
            # only messages above the previous mark were numbered
            self.assertEqual([x[3] for x in entries],
                             [m[2] for m in batch if m[0] > before])
            self.assertEqual(n.producer_marks.get(producer, 0), mark)
        # positions: base+1 .. base+N, in order, no gaps
        self.assertEqual([x[0] for x in all_entries],
                         list(range(base + 1, base + 1 + len(all_entries))))
        self.assertEqual(n.last_pos, base + len(all_entries))
        # each produced message exactly once
        sent = {m[2] for _p, b in batches for m in b}
        payloads = [x[3] for x in all_entries]
        self.assertEqual(sorted(payloads), sorted(sent))
        # per exact key: 1, 2, 3, ... in position order
        per_key = {}
        for _pos, seq, key, _payload, _term in all_entries:
            per_key.setdefault(key, []).append(seq)
        for key, seqs in per_key.items():
            self.assertEqual(seqs, list(range(1, len(seqs) + 1)), key)
            self.assertEqual(n.last_seq(key), len(seqs))
        # messages of one producer keep their producer order
        for p in {p for p, _b in batches}:
            mine = [int(x[3].strip('"').split('-')[1]) for x in all_entries
                    if x[3].startswith(f'"{p}-')]
            self.assertEqual(mine, sorted(mine))


class KeyCacheBytes(unittest.TestCase):

    def test_key_cache_is_bounded_by_bytes_as_well_as_count(self):
        # issue 10: 240 distinct 1 MiB keys grew the router by 245 MB; keys
        # are now at most 4 KiB, and the cache holds at most so many bytes
        store = {}
        n = Numbering(lookup_seq=lambda key: store.get(key, 0), key_cache_size=10000,
                      key_cache_bytes=10000)
        keys = [(f'{i:04d}' + 'k' * 4000,) for i in range(10)]
        for key in keys:
            entries, _ = n.assign('p', [(n.last_pos + 1, key, b'')])
            store[key] = entries[-1][1]
        self.assertLessEqual(n.cached_key_bytes, 10000)
        self.assertEqual(n.cached_key_bytes, 2 * (4004 + 8))
        # an evicted key continues its numbering from the journal
        entries, _ = n.assign('p', [(n.last_pos + 1, keys[0], b'')])
        self.assertEqual(entries[0][1], 2)
