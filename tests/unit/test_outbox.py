"""Outbox: producer sequence numbers, batching limits, acks, the bound."""

from hypothesis import given
from hypothesis import settings
from hypothesis import strategies as st
from twisted.trial import unittest

from buildbot_mq_ordered.master.outbox import Outbox

OVERHEAD = 64   # per-message allowance Outbox.batch adds to a message's size


class Add(unittest.TestCase):

    def test_add_numbers_from_one(self):
        box = Outbox()
        self.assertIsNone(box.add(['a'], '1'))
        self.assertIsNone(box.add(['b'], '2'))
        self.assertEqual(len(box), 2)
        self.assertEqual(box.batch(10, 10**6), [[1, ['a'], '1'], [2, ['b'], '2']])
        self.assertEqual(box.next_seq, 3)

    def test_empty_batch(self):
        box = Outbox()
        self.assertEqual(box.batch(10, 10**6), [])
        self.assertEqual(len(box), 0)


class Batch(unittest.TestCase):

    def fill(self, n, size=10):
        # each message: size bytes in all (a one-byte key, size - 1 of data)
        box = Outbox()
        for i in range(n):
            box.add(['k'], b'x' * (size - 1))
        return box

    def test_count_limit(self):
        box = self.fill(10)
        batch = box.batch(3, 10**6)
        self.assertEqual([m[0] for m in batch], [1, 2, 3])
        self.assertEqual(len(box), 10, "batch() does not remove anything")

    def test_bytes_limit(self):
        box = self.fill(10, size=100)
        per = 100 + OVERHEAD
        self.assertEqual(len(box.batch(100, 3 * per)), 3)
        self.assertEqual(len(box.batch(100, 3 * per + 1)), 3)
        self.assertEqual(len(box.batch(100, 3 * per - 1)), 2)

    def test_both_limits_smaller_wins(self):
        box = self.fill(10, size=100)
        self.assertEqual(len(box.batch(2, 10**6)), 2)
        self.assertEqual(len(box.batch(100, 2 * (100 + OVERHEAD))), 2)

    def test_always_at_least_one(self):
        box = self.fill(3, size=1000)
        self.assertEqual([m[0] for m in box.batch(100, 10)], [1])
        self.assertEqual([m[0] for m in box.batch(0, 10**6)], [1])
        self.assertEqual([m[0] for m in box.batch(0, 0)], [1])

    def test_bytes_limit_counts_key_and_data_bytes(self):
        # the limit is named (and documented) in bytes: a key's multi-byte
        # characters count by their UTF-8 size, and the key counts at all
        # (issue 10: huge keys with small data overflowed the router's frame)
        box = Outbox()
        key = ['€' * 100]                      # 100 chars, 300 bytes
        box.add(key, b'x')
        box.add(key, b'x')
        limit = 2 * (300 + 1 + OVERHEAD) - 1
        self.assertEqual(len(box.batch(100, limit)), 1)
        self.assertEqual(len(box.batch(100, limit + 1)), 2)

    @given(st.lists(st.integers(0, 300), min_size=1, max_size=30),
           st.integers(0, 40), st.integers(0, 3000))
    @settings(max_examples=200, deadline=None)
    def test_batch_is_oldest_prefix_within_limits(self, sizes, max_count, max_bytes):
        box = Outbox()
        for s in sizes:
            box.add(['k'], b'x' * s)      # size: s and the key's one byte
        batch = box.batch(max_count, max_bytes)
        self.assertGreaterEqual(len(batch), 1)
        self.assertEqual([m[0] for m in batch], list(range(1, len(batch) + 1)))
        if len(batch) > 1:
            self.assertLessEqual(len(batch), max_count)
            self.assertLessEqual(sum(len(m[2]) + 1 + OVERHEAD for m in batch), max_bytes)
        if len(batch) < len(sizes):
            # the next one would have broken a limit
            more = batch + [box._pending[len(batch)]]
            self.assertTrue(len(more) > max_count or
                            sum(len(m[2]) + 1 + OVERHEAD for m in more) > max_bytes)


class Ack(unittest.TestCase):

    def test_ack_forgets_up_to_mark(self):
        box = Outbox()
        for i in range(5):
            box.add(['k'], str(i))
        self.assertEqual(box.ack(3), 3)
        self.assertEqual(len(box), 2)
        self.assertEqual([m[0] for m in box.batch(10, 10**6)], [4, 5])

    def test_ack_is_idempotent_and_ignores_old_marks(self):
        box = Outbox()
        for i in range(5):
            box.add(['k'], str(i))
        box.ack(2)
        self.assertEqual(box.ack(2), 0)
        self.assertEqual(box.ack(0), 0)
        self.assertEqual(len(box), 3)

    def test_ack_beyond_everything(self):
        box = Outbox()
        box.add(['k'], '1')
        self.assertEqual(box.ack(100), 1)
        self.assertEqual(len(box), 0)
        self.assertEqual(box.ack(200), 0)
        # numbering continues after an empty outbox
        box.add(['k'], '2')
        self.assertEqual(box.batch(1, 1)[0][0], 2)

    def test_resubmission_after_partial_ack(self):
        box = Outbox()
        for i in range(6):
            box.add(['k'], str(i))
        first = box.batch(4, 10**6)
        box.ack(2)  # only part of it acknowledged before the reconnect
        again = box.batch(10, 10**6)
        self.assertEqual([m[0] for m in again], [3, 4, 5, 6])
        self.assertEqual(again[:2], first[2:])


class Bound(unittest.TestCase):

    def test_full_outbox_drops_oldest_and_counts(self):
        box = Outbox(max_messages=3)
        for i in range(3):
            self.assertIsNone(box.add(['k'], str(i)))
        self.assertEqual(box.add(['k'], '3'), [1, ['k'], '0'])
        self.assertEqual(box.add(['k'], '4'), [2, ['k'], '1'])
        self.assertEqual(box.dropped, 2)
        self.assertEqual(len(box), 3)
        self.assertEqual([m[0] for m in box.batch(10, 10**6)], [3, 4, 5])

    def test_bound_of_one(self):
        box = Outbox(max_messages=1)
        box.add(['k'], 'a')
        self.assertEqual(box.add(['k'], 'b'), [1, ['k'], 'a'])
        self.assertEqual(box.batch(10, 10**6), [[2, ['k'], 'b']])
        self.assertEqual(box.dropped, 1)

    def test_lowered_bound_applies_on_next_add(self):
        box = Outbox(max_messages=10)
        for i in range(5):
            box.add(['k'], str(i))
        box.max_messages = 5
        self.assertEqual(box.add(['k'], '5')[0], 1)
        self.assertEqual(len(box), 5)

    @given(st.integers(1, 20), st.lists(st.one_of(st.just('add'), st.integers(0, 60)),
                                        max_size=80))
    @settings(max_examples=200, deadline=None)
    def test_model(self, bound, ops):
        box = Outbox(max_messages=bound)
        model, dropped, seq = [], 0, 0
        for op in ops:
            if op == 'add':
                seq += 1
                got = box.add(['k'], str(seq))
                if len(model) >= bound:
                    self.assertEqual(got[0], model.pop(0))
                    dropped += 1
                else:
                    self.assertIsNone(got)
                model.append(seq)
            else:
                n = box.ack(op)
                kept = [s for s in model if s > op]
                self.assertEqual(n, len(model) - len(kept))
                model = kept
            self.assertLessEqual(len(box), bound)
            self.assertEqual(len(box), len(model))
            self.assertEqual(box.dropped, dropped)
            self.assertEqual([m[0] for m in box.batch(10**6, 10**9)], model)
