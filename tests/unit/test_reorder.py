"""ReorderBuffer: unit tests and property tests (pure, no reactor)."""

from hypothesis import given
from hypothesis import settings
from hypothesis import strategies as st
from twisted.trial import unittest

from buildbot_mq_ordered.master.reorder import ReorderBuffer

REPLAY_LIMIT = 7


def e(pos):
    """A stream entry shaped like the real ones: [pos, seq, key, data_json]."""
    return [pos, pos, ['k', str(pos)], f'"{pos}"']


def positions(entries):
    return [x[0] for x in entries]


def replay_until_done(test, buf, history, last, out, limit=REPLAY_LIMIT):
    """Fill every hole the way the MQ does: ask ``missing()``, feed the
    sequencer's answer (history[first..], at most ``limit``) back in.
    Every round must make progress: the buffer must never stall."""
    rounds = 0
    while True:
        test.assertLessEqual(len(buf), buf.capacity)
        gap = buf.missing()
        if gap is None:
            break
        first, gap_last = gap
        test.assertLessEqual(first, gap_last)
        test.assertEqual(first, buf.next_pos)
        test.assertLessEqual(gap_last, last)
        before = buf.next_pos
        answer = [history[p] for p in range(first, min(gap_last, first + limit - 1) + 1)]
        out.extend(buf.offer(answer))
        test.assertLessEqual(len(buf), buf.capacity)
        test.assertGreater(buf.next_pos, before,
                           f"replay of {first}..{gap_last} made no progress "
                           f"(held {sorted(buf._held)}, capacity {buf.capacity})")
        rounds += 1
        test.assertLess(rounds, 10 * last + 10)


class Basics(unittest.TestCase):

    def test_capacity_must_be_positive(self):
        with self.assertRaises(ValueError):
            ReorderBuffer(capacity=0)
        with self.assertRaises(ValueError):
            ReorderBuffer(capacity=-5)
        self.assertEqual(ReorderBuffer(capacity=1).capacity, 1)

    def test_not_started_by_default(self):
        buf = ReorderBuffer()
        self.assertFalse(buf.started)
        self.assertIsNone(buf.next_pos)
        self.assertIsNone(buf.missing())
        self.assertEqual(len(buf), 0)

    def test_started_with_next_pos(self):
        buf = ReorderBuffer(next_pos=5)
        self.assertTrue(buf.started)
        self.assertEqual(buf.next_pos, 5)
        self.assertEqual(buf.highest_seen, 4)
        self.assertIsNone(buf.missing())

    def test_in_order_passes_straight_through(self):
        buf = ReorderBuffer(next_pos=1)
        self.assertEqual(positions(buf.offer([e(1), e(2)])), [1, 2])
        self.assertEqual(positions(buf.offer([e(3)])), [3])
        self.assertEqual(buf.next_pos, 4)
        self.assertEqual(len(buf), 0)
        self.assertIsNone(buf.missing())

    def test_entries_returned_unchanged(self):
        buf = ReorderBuffer(next_pos=1)
        a, b = e(2), e(1)
        out = buf.offer([a, b])
        self.assertIs(out[0], b)
        self.assertIs(out[1], a)

    def test_tuple_entries(self):
        buf = ReorderBuffer(next_pos=1)
        self.assertEqual(buf.offer([(2, 'b'), (1, 'a')]), [(1, 'a'), (2, 'b')])

    def test_early_arrival_is_held_then_released(self):
        buf = ReorderBuffer(next_pos=1)
        self.assertEqual(buf.offer([e(3), e(2)]), [])
        self.assertEqual(len(buf), 2)
        self.assertEqual(buf.missing(), (1, 1))
        self.assertEqual(positions(buf.offer([e(1)])), [1, 2, 3])
        self.assertEqual(len(buf), 0)
        self.assertEqual(buf.next_pos, 4)
        self.assertIsNone(buf.missing())

    def test_reversed_within_one_offer(self):
        buf = ReorderBuffer(next_pos=1)
        self.assertEqual(positions(buf.offer([e(p) for p in range(10, 0, -1)])),
                         list(range(1, 11)))

    def test_duplicates_and_delivered_are_ignored(self):
        buf = ReorderBuffer(next_pos=1)
        self.assertEqual(positions(buf.offer([e(1), e(1), e(2)])), [1, 2])
        self.assertEqual(buf.offer([e(1), e(2)]), [])
        self.assertEqual(buf.offer([e(4), e(4)]), [])
        self.assertEqual(len(buf), 1)
        self.assertEqual(positions(buf.offer([e(3), e(4), e(3)])), [3, 4])
        self.assertEqual(len(buf), 0)

    def test_duplicate_held_keeps_first_copy(self):
        buf = ReorderBuffer(next_pos=1)
        first = [3, 1, ['a'], '"first"']
        buf.offer([first, [3, 1, ['a'], '"second"']])
        self.assertEqual(buf.offer([e(1), e(2)])[-1], first)

    def test_missing_reports_first_hole_only(self):
        buf = ReorderBuffer(next_pos=1)
        buf.offer([e(4), e(5), e(9)])
        self.assertEqual(buf.missing(), (1, 3))
        buf.offer([e(1), e(2), e(3)])
        self.assertEqual(buf.next_pos, 6)
        self.assertEqual(buf.missing(), (6, 8))

    def test_missing_none_when_nothing_above(self):
        buf = ReorderBuffer(next_pos=3)
        buf.offer([e(3)])
        self.assertIsNone(buf.missing())


class Capacity(unittest.TestCase):

    def test_full_buffer_drops_early_arrivals(self):
        buf = ReorderBuffer(capacity=2, next_pos=1)
        self.assertEqual(buf.offer([e(5), e(4), e(3)]), [])
        self.assertEqual(len(buf), 2)
        # the dropped entry still counts as seen: the hole covers it
        self.assertEqual(buf.highest_seen, 5)
        self.assertEqual(buf.missing(), (1, 3))

    def test_dropped_arrival_still_extends_missing(self):
        buf = ReorderBuffer(capacity=1, next_pos=1)
        buf.offer([e(2), e(7)])
        self.assertEqual(len(buf), 1)
        self.assertEqual(buf.highest_seen, 7)
        # 1 is missing below the held 2
        self.assertEqual(buf.missing(), (1, 1))

    def test_in_order_fast_path_needs_no_room(self):
        buf = ReorderBuffer(capacity=1, next_pos=1)
        self.assertEqual(positions(buf.offer([e(p) for p in range(1, 50)])),
                         list(range(1, 50)))

    def test_next_position_accepted_when_buffer_full(self):
        # The entry the buffer waits for must always be taken, even when the
        # buffer is full of later entries; otherwise a hole can never be
        # filled by replay (the MQ then skips positions the sequencer has).
        buf = ReorderBuffer(capacity=1, next_pos=1)
        self.assertEqual(buf.offer([e(2)]), [])
        self.assertEqual(positions(buf.offer([e(1)])), [1, 2])
        self.assertIsNone(buf.missing())

    def test_replay_fills_hole_when_buffer_full(self):
        # a reconnect: live events fill the buffer while the hole is replayed
        buf = ReorderBuffer(capacity=3, next_pos=1)
        buf.offer([e(p) for p in range(6, 12)])
        self.assertEqual(len(buf), 3)
        self.assertEqual(buf.missing(), (1, 5))
        out = buf.offer([e(p) for p in range(1, 6)])
        self.assertEqual(positions(out)[:5], [1, 2, 3, 4, 5])


class StartSkipForget(unittest.TestCase):

    def test_offer_before_start_holds(self):
        buf = ReorderBuffer()
        self.assertEqual(buf.offer([e(5), e(6)]), [])
        self.assertEqual(len(buf), 2)
        self.assertIsNone(buf.missing())
        self.assertEqual(buf.highest_seen, 6)

    def test_start_releases_held_and_drops_older(self):
        buf = ReorderBuffer()
        buf.offer([e(3), e(5), e(6)])
        self.assertEqual(positions(buf.start(5)), [5, 6])
        self.assertTrue(buf.started)
        self.assertEqual(buf.next_pos, 7)
        self.assertEqual(len(buf), 0)
        self.assertIsNone(buf.missing())

    def test_start_with_hole(self):
        buf = ReorderBuffer()
        buf.offer([e(8)])
        self.assertEqual(buf.start(5), [])
        self.assertEqual(buf.missing(), (5, 7))
        self.assertEqual(positions(buf.offer([e(5), e(6), e(7)])), [5, 6, 7, 8])

    def test_start_sets_highest_seen(self):
        buf = ReorderBuffer()
        buf.start(10)
        self.assertEqual(buf.highest_seen, 9)
        self.assertIsNone(buf.missing())
        self.assertEqual(buf.offer([e(9)]), [])
        self.assertEqual(positions(buf.offer([e(10)])), [10])

    def test_saw_creates_hole(self):
        buf = ReorderBuffer(next_pos=1)
        buf.saw(4)
        self.assertEqual(buf.missing(), (1, 4))
        buf.saw(2)  # never lowers
        self.assertEqual(buf.highest_seen, 4)
        self.assertEqual(buf.missing(), (1, 4))
        self.assertEqual(positions(buf.offer([e(1), e(2), e(3), e(4)])), [1, 2, 3, 4])
        self.assertIsNone(buf.missing())

    def test_saw_below_next_is_no_hole(self):
        buf = ReorderBuffer(next_pos=10)
        buf.saw(3)
        self.assertIsNone(buf.missing())

    def test_skip_to_releases_and_moves_on(self):
        buf = ReorderBuffer(next_pos=1)
        buf.offer([e(4), e(5), e(8)])
        self.assertEqual(buf.missing(), (1, 3))
        self.assertEqual(positions(buf.skip_to(4)), [4, 5])
        self.assertEqual(buf.next_pos, 6)
        self.assertEqual(buf.missing(), (6, 7))
        self.assertEqual(buf.offer([e(2)]), [])  # given up on: never delivered

    def test_skip_to_past_held_drops_them(self):
        buf = ReorderBuffer(next_pos=1)
        buf.offer([e(3), e(4)])
        self.assertEqual(buf.skip_to(10), [])
        self.assertEqual(len(buf), 0)
        self.assertEqual(buf.next_pos, 10)
        self.assertEqual(buf.highest_seen, 9)
        self.assertIsNone(buf.missing())

    def test_skip_to_backwards_is_noop(self):
        buf = ReorderBuffer(next_pos=5)
        buf.offer([e(7)])
        self.assertEqual(buf.skip_to(5), [])
        self.assertEqual(buf.skip_to(2), [])
        self.assertEqual(buf.next_pos, 5)
        self.assertEqual(len(buf), 1)

    def test_skip_to_when_not_started_starts(self):
        buf = ReorderBuffer()
        buf.offer([e(3)])
        self.assertEqual(positions(buf.skip_to(3)), [3])
        self.assertTrue(buf.started)
        self.assertEqual(buf.next_pos, 4)

    def test_forget_above(self):
        buf = ReorderBuffer(next_pos=1)
        buf.offer([e(3), e(50), e(100)])
        self.assertEqual(buf.missing(), (1, 2))
        buf.forget_above(10)
        self.assertEqual(len(buf), 1)
        self.assertEqual(buf.highest_seen, 10)
        self.assertEqual(positions(buf.offer([e(1), e(2)])), [1, 2, 3])
        self.assertEqual(buf.missing(), (4, 10))

    def test_forget_above_removes_phantom_hole(self):
        buf = ReorderBuffer(next_pos=1)
        buf.offer([e(1), e(2)])
        buf.saw(1000)  # a forged/bogus position
        self.assertEqual(buf.missing(), (3, 1000))
        buf.forget_above(2)
        self.assertIsNone(buf.missing())
        self.assertEqual(positions(buf.offer([e(3)])), [3])

    def test_forget_above_never_raises_highest(self):
        buf = ReorderBuffer(next_pos=1)
        buf.offer([e(2)])
        buf.forget_above(9)
        self.assertEqual(buf.highest_seen, 2)
        self.assertEqual(buf.missing(), (1, 1))


@st.composite
def arrivals(draw, max_n=40):
    """N positions, arrival order a permutation with duplicates and holes;
    returned as chunks (one stream event / replay answer each)."""
    n = draw(st.integers(1, max_n))
    order = draw(st.permutations(list(range(1, n + 1))))
    dups = draw(st.lists(st.integers(1, n), max_size=n))
    order = list(order)
    for d in dups:
        order.insert(draw(st.integers(0, len(order))), d)
    lost = draw(st.sets(st.integers(1, n), max_size=n))
    order = [p for p in order if p not in lost]
    cuts = sorted(draw(st.lists(st.integers(0, len(order)), max_size=8)))
    chunks, prev = [], 0
    for c in cuts + [len(order)]:
        chunks.append(order[prev:c])
        prev = c
    return n, chunks


class Properties(unittest.TestCase):

    def check(self, n, chunks, capacity, start_at=1, start_late=False):
        history = {p: e(p) for p in range(1, n + 1)}
        buf = ReorderBuffer(capacity=capacity,
                            next_pos=None if start_late else start_at)
        out = []
        for i, chunk in enumerate(chunks):
            if start_late and i == len(chunks) // 2:
                out.extend(buf.start(start_at))
            out.extend(buf.offer([history[p] for p in chunk]))
            self.assertLessEqual(len(buf), capacity)
            got = positions(out)
            # what is released is always a prefix of next..N
            self.assertEqual(got, list(range(start_at, start_at + len(got))))
        if start_late and not buf.started:
            out.extend(buf.start(start_at))
        # the sequencer's head, as a (re)sync tells the MQ
        buf.saw(n)
        replay_until_done(self, buf, history, n, out)
        self.assertEqual(positions(out), list(range(start_at, n + 1)))
        self.assertEqual(out, [history[p] for p in range(start_at, n + 1)])
        self.assertEqual(len(buf), 0)
        self.assertEqual(buf.next_pos, n + 1)
        self.assertIsNone(buf.missing())

    @given(arrivals())
    @settings(max_examples=200, deadline=None)
    def test_any_order_with_room(self, case):
        n, chunks = case
        self.check(n, chunks, capacity=n)

    @given(arrivals(), st.integers(1, 40), st.booleans())
    @settings(max_examples=200, deadline=None)
    def test_start_anywhere(self, case, start, late):
        n, chunks = case
        start = min(start, n)
        self.check(n, chunks, capacity=n, start_at=start, start_late=late)

    @given(arrivals(), st.integers(1, 6))
    @settings(max_examples=200, deadline=None)
    def test_any_order_small_capacity(self, case, capacity):
        # bounded memory must not cost progress: every replay round delivers
        n, chunks = case
        self.check(n, chunks, capacity=capacity)

    @given(st.lists(st.integers(1, 30), max_size=80), st.integers(1, 5))
    @settings(max_examples=200, deadline=None)
    def test_never_delivers_twice_or_out_of_order(self, stream, capacity):
        buf = ReorderBuffer(capacity=capacity, next_pos=1)
        out = []
        for p in stream:
            out.extend(buf.offer([e(p)]))
            self.assertLessEqual(len(buf), capacity)
            gap = buf.missing()
            if gap is not None:
                self.assertEqual(gap[0], buf.next_pos)
                self.assertLessEqual(gap[0], gap[1])
                self.assertLessEqual(gap[1], max(stream))
                self.assertNotIn(gap[1], buf._held)
        self.assertEqual(positions(out), list(range(1, len(out) + 1)))

    @given(arrivals(max_n=30), st.integers(0, 35))
    @settings(max_examples=200, deadline=None)
    def test_skip_to_then_rest_in_order(self, case, skip):
        n, chunks = case
        history = {p: e(p) for p in range(1, n + 1)}
        buf = ReorderBuffer(capacity=n, next_pos=1)
        out = []
        half = len(chunks) // 2
        for chunk in chunks[:half]:
            out.extend(buf.offer([history[p] for p in chunk]))
        delivered = len(out)
        out.extend(buf.skip_to(skip))
        for chunk in chunks[half:]:
            out.extend(buf.offer([history[p] for p in chunk]))
        buf.saw(n)
        replay_until_done(self, buf, history, n, out)
        got = positions(out)
        first_after = max(skip, delivered + 1)
        self.assertEqual(got, list(range(1, delivered + 1)) +
                         list(range(first_after, n + 1)))
