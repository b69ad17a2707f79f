"""StreamFollower: unit tests and property tests (pure: no reactor, no router).

The property test plays a sequencer (journal, retention, a lost journal
replaced by a new stream) and a network (joins, leaves, events arriving in
any order, replay answers and failures arriving late) against one follower
in random interleavings, and checks what a master must never do: deliver a
position twice, out of order, or something the sequencer did not publish;
skip what is still retained; stall while a replay can fill a hole.
"""

from hypothesis import given
from hypothesis import settings
from hypothesis import strategies as st
from twisted.trial import unittest

from buildbot_mq_ordered import wire
from buildbot_mq_ordered.master.actions import Deliver
from buildbot_mq_ordered.master.actions import Replay
from buildbot_mq_ordered.master.actions import Report
from buildbot_mq_ordered.master.actions import RetryLater
from buildbot_mq_ordered.master.follower import StreamFollower


def entry(pos):
    return [pos, pos, ['k', str(pos % 3)], b'%d' % pos]


def of(kind, actions):
    return [a for a in actions if isinstance(a, kind)]


def delivered(actions):
    return [e[0] for a in of(Deliver, actions) for e in a.entries]


class Sequencer:
    """What the follower is told about: one stream at a time, its journal
    retained from first_pos, answers computed when they are given."""

    def __init__(self):
        self.streams = 0
        self.new_stream()

    def new_stream(self):
        self.streams += 1
        self.stream_id = f'stream-{self.streams}'
        self.head = 0
        self.first_pos = 1

    def publish(self, n):
        first = self.head + 1
        self.head += n
        return [entry(p) for p in range(first, self.head + 1)]

    def prune(self, n):
        self.first_pos = min(self.first_pos + n, self.head + 1)

    def info(self):
        return self.stream_id, self.first_pos, self.head

    def answer(self, first, count, cut):
        """As Sequencer.replay: bounded by count, and by bytes (``cut``)."""
        start = max(first, self.first_pos)
        last = min(first + count - 1, self.head)
        entries = [entry(p) for p in range(start, last + 1)]
        if len(entries) > 1 and cut:
            entries = entries[:max(1, len(entries) - cut)]
        return [self.stream_id, self.first_pos, self.head, entries]


class Master:
    """A follower and what it has done, checked at every step."""

    def __init__(self, test, seq):
        self.test = test
        self.seq = seq
        self.follower = StreamFollower(capacity=8, backoff=lambda n: n)
        self.session = 0          # bumps on every join
        self.inbox = []           # stream events published while joined
        self.replays = []         # (session, Replay) asked, not yet answered
        self.retries = 0          # RetryLater timers pending
        self.delivered = {}       # stream id -> positions, in delivery order
        self.start = {}           # stream id -> first position it should deliver

    def act(self, actions):
        f, t = self.follower, self.test
        for a in actions:
            if isinstance(a, Deliver):
                got = self.delivered.setdefault(f.stream_id, [])
                for e in a.entries:
                    t.assertEqual(f.stream_id, self.seq.stream_id)
                    t.assertEqual(e, entry(e[0]))         # as published
                    t.assertTrue(not got or e[0] > got[-1], (got[-5:], e[0]))
                    got.append(e[0])
            elif isinstance(a, Replay):
                live = [r for s, r in self.replays if s == self.session]
                t.assertEqual(live, [], "a second replay while one is in flight")
                t.assertTrue(f.joined)
                t.assertLessEqual(a.count, wire.MAX_REPLAY)
                self.replays.append((self.session, a))
            elif isinstance(a, RetryLater):
                self.retries += 1
            else:
                t.assertIsInstance(a, Report)
                if 'skipped' in a.text:
                    first, last = (int(x) for x in a.text.split(
                        'positions ')[1].split(' ')[0].split('..'))
                    # only what retention removed may be skipped
                    t.assertLess(last, self.seq.first_pos, a.text)

    def join(self):
        self.session += 1
        self.inbox = []
        stream_id, first_pos, head = self.seq.info()
        if self.follower.stream_id is None:
            self.start[stream_id] = head + 1
        elif self.follower.stream_id != stream_id:
            self.start[stream_id] = first_pos
        self.act(self.follower.on_join(stream_id, first_pos, head))

    def leave(self):
        self.inbox = []
        self.act(self.follower.on_leave())

    def answer(self, i, cut, fail):
        session, r = self.replays.pop(i)
        if fail:
            self.act(self.follower.on_replay_failed(r.token, 'busy'))
        else:
            self.act(self.follower.on_replay(r.token, self.seq.answer(r.first, r.count, cut)))

    def settle(self):
        """Join if need be, then let every event, replay and retry happen:
        the follower must reach the head (bounded: a stall fails)."""
        if not self.follower.joined:
            self.join()
        for _ in range(10000):
            if self.inbox:
                self.act(self.follower.on_event(*self.inbox.pop(0)))
            elif self.replays:
                self.answer(0, 0, False)
            elif self.retries:
                self.retries -= 1
                self.act(self.follower.retry())
            else:
                break
        self.test.assertEqual(self.follower.next_pos, self.seq.head + 1, "stalled")
        stream_id = self.seq.stream_id
        start = max(self.start[stream_id], self.seq.first_pos)
        got = [p for p in self.delivered.get(stream_id, []) if p >= start]
        self.test.assertEqual(got, list(range(start, self.seq.head + 1)))


class Interleavings(unittest.TestCase):

    @settings(max_examples=300, deadline=None)
    @given(st.data())
    def test_never_twice_never_out_of_order_never_stalled(self, data):
        seq = Sequencer()
        m = Master(self, seq)
        m.join()
        for _ in range(data.draw(st.integers(1, 60), label='steps')):
            op = data.draw(st.sampled_from(
                ['publish', 'publish', 'event', 'event', 'answer', 'fail', 'retry',
                 'leave', 'join', 'info', 'prune', 'new_stream', 'ack']))
            if op == 'publish':
                entries = seq.publish(data.draw(st.integers(1, 12)))
                if m.follower.joined:
                    # one event per batch, or the batch in several events
                    split = data.draw(st.integers(1, len(entries)))
                    for i in range(0, len(entries), split):
                        m.inbox.append((seq.stream_id, entries[i:i + split]))
            elif op == 'event' and m.inbox:
                # events may arrive in any order (and behind replay answers)
                i = data.draw(st.integers(0, len(m.inbox) - 1))
                m.act(m.follower.on_event(*m.inbox.pop(i)))
            elif op in ('answer', 'fail') and m.replays:
                i = data.draw(st.integers(0, len(m.replays) - 1))
                m.answer(i, data.draw(st.integers(0, 5)), op == 'fail')
            elif op == 'retry' and m.retries:
                m.retries -= 1
                m.act(m.follower.retry())
            elif op == 'leave' and m.follower.joined:
                m.leave()
            elif op == 'join' and not m.follower.joined:
                m.join()
            elif op == 'info':
                # a heartbeat: its answer travels behind the events published
                # before it, so deliver those first
                while m.inbox and m.follower.joined:
                    m.act(m.follower.on_event(*m.inbox.pop(0)))
                m.act(m.follower.on_info(*seq.info()))
            elif op == 'prune':
                seq.prune(data.draw(st.integers(1, 10)))
            elif op == 'new_stream' and not m.follower.joined:
                seq.new_stream()    # the journal was lost while we were away
            elif op == 'ack':
                m.act(m.follower.on_acked(seq.head))
        m.settle()
        self.assertTrue(m.follower.caught_up)


class Decisions(unittest.TestCase):

    def joined(self, head=0, stream_id='s1'):
        f = StreamFollower(capacity=100, backoff=lambda n: 0.5 * n)
        self.assertEqual(f.on_join(stream_id, 1, head), [])
        return f

    def test_first_join_starts_after_the_head(self):
        f = self.joined(head=10)
        self.assertEqual(f.next_pos, 11)
        self.assertEqual(delivered(f.on_event('s1', [entry(11)])), [11])

    def test_a_chosen_start_replays_from_there(self):
        # the tail command: --from POS, --last N
        f = StreamFollower(start=lambda first_pos, head: max(head - 1, first_pos))
        (replay,) = of(Replay, f.on_join('s1', 1, 10))
        self.assertEqual((replay.first, replay.count), (9, 2))
        self.assertEqual(delivered(f.on_replay(replay.token, ['s1', 1, 10, [entry(9), entry(10)]])),
                         [9, 10])

    def test_a_hole_asks_one_replay_and_the_answer_fills_it(self):
        f = self.joined()
        actions = f.on_event('s1', [entry(3)])
        self.assertEqual(delivered(actions), [])
        (replay,) = of(Replay, actions)
        self.assertEqual((replay.first, replay.count), (1, 2))
        self.assertEqual(of(Replay, f.on_event('s1', [entry(5)])), [])   # one at a time
        actions = f.on_replay(replay.token, ['s1', 1, 5, [entry(1), entry(2)]])
        self.assertEqual(delivered(actions), [1, 2, 3])
        (replay,) = of(Replay, actions)                                    # then the next hole
        self.assertEqual((replay.first, replay.count), (4, 1))

    def test_an_answer_after_a_leave_is_ignored(self):
        f = self.joined()
        (replay,) = of(Replay, f.on_event('s1', [entry(2)]))
        f.on_leave()
        self.assertEqual(f.on_replay(replay.token, ['s1', 1, 2, [entry(1)]]), [])
        self.assertEqual(f.on_replay_failed(replay.token, 'gone'), [])
        self.assertEqual(f.next_pos, 1)

    def test_a_failed_replay_is_retried_later_each_time(self):
        f = self.joined()
        (replay,) = of(Replay, f.on_event('s1', [entry(2)]))
        delays = []
        for _ in range(3):
            actions = f.on_replay_failed(replay.token, 'busy')
            delays += [a.delay for a in of(RetryLater, actions)]
            (replay,) = of(Replay, f.retry())
        self.assertEqual(delays, [0.5, 1.0, 1.5])
        self.assertEqual(delivered(f.on_replay(replay.token, ['s1', 1, 2, [entry(1)]])),
                         [1, 2])
        # the run of failures is over: the next one starts from the first delay
        (replay,) = of(Replay, f.on_event('s1', [entry(4)]))
        self.assertEqual([a.delay for a in of(RetryLater, f.on_replay_failed(
            replay.token, 'busy'))], [0.5])

    def test_positions_beyond_retention_are_skipped_and_reported(self):
        f = self.joined()
        (replay,) = of(Replay, f.on_event('s1', [entry(9)]))
        actions = f.on_replay(replay.token, ['s1', 6, 9, [entry(6), entry(7), entry(8)]])
        self.assertEqual(delivered(actions), [6, 7, 8, 9])
        (report,) = of(Report, actions)
        self.assertEqual(report.level, 'error')
        self.assertIn('stream positions 1..5 (5 messages) are no longer in the '
                      "sequencer's history", report.text)
        self.assertEqual(f.skipped, 5)

    def test_a_hole_the_sequencer_has_nothing_for_is_skipped_not_stalled_on(self):
        f = self.joined()
        (replay,) = of(Replay, f.on_event('s1', [entry(3)]))
        actions = f.on_replay(replay.token, ['s1', 1, 3, []])
        self.assertEqual(delivered(actions), [3])
        self.assertIn('were not returned by the sequencer', of(Report, actions)[0].text)
        self.assertEqual(f.skipped, 2)

    def test_a_new_stream_starts_over_from_its_first_position(self):
        f = self.joined(head=4)
        f.on_acked(4)
        f.on_leave()
        actions = f.on_join('s2', 1, 2)
        self.assertEqual((f.stream_id, f.stream_changes), ('s2', 1))
        self.assertIn('now serves stream s2, not stream s1', of(Report, actions)[0].text)
        (replay,) = of(Replay, actions)
        self.assertEqual((replay.first, replay.count), (1, 2))
        self.assertTrue(f.caught_up)        # acknowledged on s1: nothing to wait for
        # late events of the old stream are counted, not delivered
        self.assertEqual(f.on_event('s1', [entry(5)]), [])
        self.assertEqual(f.other_stream_events, 1)

    def test_a_shorter_stream_continues_after_its_end(self):
        f = self.joined()
        f.on_event('s1', [entry(1), entry(2), entry(3)])
        f.on_acked(3)
        f.on_leave()
        actions = f.on_join('s1', 1, 1)
        self.assertIn('ends at position 1, before position 3', of(Report, actions)[0].text)
        self.assertEqual(f.next_pos, 2)
        self.assertEqual(delivered(f.on_event('s1', [entry(2)])), [2])
        self.assertTrue(f.caught_up)

    def test_malformed_entries_and_answers_are_refused(self):
        f = self.joined()
        actions = f.on_event('s1', [entry(1), [2, 2, 'not a key', b'']])
        self.assertEqual(delivered(actions), [1])
        self.assertIn('ignored 1 malformed', of(Report, actions)[0].text)
        (replay,) = of(Replay, f.on_event('s1', [entry(3)]))
        self.assertEqual(of(RetryLater, f.on_replay(replay.token, {'no': 'list'})),
                         [RetryLater(0.5)])

    def test_a_heartbeat_finds_positions_whose_events_never_came(self):
        f = self.joined()
        self.assertEqual(delivered(f.on_event('s1', [entry(1)])), [1])
        (replay,) = of(Replay, f.on_info('s1', 1, 3))
        self.assertEqual((replay.first, replay.count), (2, 2))
        self.assertEqual(of(Replay, f.on_info('s1', 1, 3)), [])      # one at a time
        f.on_leave()
        self.assertEqual(f.on_info('s1', 1, 4), [])                   # not joined: nothing

    def test_caught_up_waits_for_what_was_acknowledged(self):
        f = self.joined()
        f.on_acked(2)
        self.assertFalse(f.caught_up)
        f.on_event('s1', [entry(1)])
        self.assertFalse(f.caught_up)
        f.on_event('s1', [entry(2)])
        self.assertTrue(f.caught_up)
