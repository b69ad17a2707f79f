"""StreamFollower: unit tests and property tests (pure: no reactor, no router).

The property test plays a sequencer (journal, retention, a lost journal
replaced by a new stream, leaders taking over - at the head, or from an
older copy of the journal: an asynchronous replica promoted, a backup
restored) and each master's network (joins, leaves, events arriving in any
order, replay answers and failures arriving late, info() answers before,
with or after the new term's events) against two followers in random
interleavings (tests/unit/streammodel.py), and checks what a master must
never do: deliver a position twice, out of order, or something the
sequencer did not publish; skip what is still retained; stall while a
replay can fill a hole; keep a position of a history the journal no longer
holds, or miss one of the new history; report a rewritten tail anywhere but
where it begins, or more than once.
"""

from hypothesis import given
from hypothesis import settings
from hypothesis import strategies as st
from twisted.trial import unittest

from buildbot_mq_ordered.master.actions import AskInfo
from buildbot_mq_ordered.master.actions import Deliver
from buildbot_mq_ordered.master.actions import Replay
from buildbot_mq_ordered.master.actions import Report
from buildbot_mq_ordered.master.actions import RetryLater
from buildbot_mq_ordered.master.follower import StreamFollower
from tests.unit.streammodel import MAX_TERMS
from tests.unit.streammodel import Master
from tests.unit.streammodel import Sequencer
from tests.unit.streammodel import entry
from tests.unit.streammodel import with_terms


def of(kind, actions):
    return [a for a in actions if isinstance(a, kind)]


def delivered(actions):
    return [e[0] for a in of(Deliver, actions) for e in a.entries]


OPS = ['publish', 'publish', 'event', 'event', 'answer', 'fail', 'retry', 'leave', 'join',
       'info', 'ask_answer', 'ask_fail', 'prune', 'new_stream', 'ack',
       'copy', 'take_over', 'fail_over', 'restore']


class Interleavings(unittest.TestCase):

    def setUp(self):
        with_terms(self)

    @settings(max_examples=300, deadline=None, report_multiple_bugs=False)
    @given(st.data())
    def test_one_history_never_twice_never_out_of_order_never_stalled(self, data):
        seq = Sequencer()
        masters = [Master(self, seq) for _ in range(2)]
        for m in masters:
            m.join()
        for _ in range(data.draw(st.integers(1, 60), label='steps')):
            op = data.draw(st.sampled_from(OPS))
            m = masters[data.draw(st.integers(0, len(masters) - 1))]
            if op in ('publish', 'copy', 'take_over', 'fail_over', 'restore', 'prune',
                      'new_stream'):
                self.journal(data, op, seq, masters)
            else:
                self.network(data, op, seq, m)
        for m in masters:
            m.settle()

    def journal(self, data, op, seq, masters):
        """What happens to the sequencer's journal."""
        if op == 'publish':
            entries = seq.publish(data.draw(st.integers(1, 12)))
            for m in masters:
                if m.follower.joined:
                    # one event per batch, or the batch in several events
                    split = data.draw(st.integers(1, len(entries)))
                    for i in range(0, len(entries), split):
                        m.inbox.append((seq.stream_id, entries[i:i + split]))
        elif op == 'copy':
            seq.copy()
        elif op == 'prune':
            seq.prune(data.draw(st.integers(1, 10)))
        elif op == 'new_stream' and not any(m.follower.joined for m in masters):
            seq.new_stream()    # the journal was lost while they were away
        elif len(seq.terms) < MAX_TERMS:
            if op == 'take_over':
                seq.take_over()                     # nothing lost
            elif op == 'fail_over':
                seq.take_over(seq.copies[-1])       # a replica behind promoted
            elif op == 'restore':
                seq.take_over(data.draw(st.sampled_from(seq.copies)))

    def network(self, data, op, seq, m):
        """What one master's network does."""
        if op == 'event' and m.inbox:
            # events may arrive in any order (and behind replay answers)
            i = data.draw(st.integers(0, len(m.inbox) - 1))
            m.act(m.follower.on_event(*m.inbox.pop(i)))
        elif op in ('answer', 'fail') and m.replays:
            i = data.draw(st.integers(0, len(m.replays) - 1))
            m.answer(i, data.draw(st.integers(0, 5)), op == 'fail', data.draw(st.booleans()))
        elif op in ('ask_answer', 'ask_fail') and m.infos:
            m.answer_info(data.draw(st.integers(0, len(m.infos) - 1)), op == 'ask_fail')
        elif op == 'retry' and m.retries:
            m.retries -= 1
            m.act(m.follower.retry())
        elif op == 'leave' and m.follower.joined:
            m.leave()
        elif op == 'join' and not m.follower.joined:
            m.join()
        elif op == 'info':
            m.heartbeat()
        elif op == 'ack':
            m.act(m.follower.on_acked(seq.head))


class Decisions(unittest.TestCase):

    def setUp(self):
        with_terms(self)

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


A, B, C = 11, 22, 33     # term ids


class RewrittenTail(unittest.TestCase):
    """Issue 22 item 2: the journal's database failed over to a replica 2 s
    behind; the new leader numbered 575 messages at positions the masters
    had delivered under the old leader, and two of three masters dropped
    them as already delivered, without a word."""

    def setUp(self):
        with_terms(self)

    def delivered_under_a(self, upto):
        f = StreamFollower(capacity=100, backoff=lambda n: 0.5 * n)
        self.assertEqual(f.on_join('s1', 1, 0, [(A, 1)]), [])
        positions = list(range(1, upto + 1))
        self.assertEqual(delivered(f.on_event('s1', [entry(p, A) for p in positions])),
                         positions)
        return f

    def assertRewritten(self, report, text):
        self.assertEqual(report.level, 'error')
        self.assertIn(text, report.text)

    def test_the_new_terms_events_wait_for_its_info_then_are_the_new_history(self):
        f = self.delivered_under_a(10)
        actions = f.on_event('s1', [entry(p, B) for p in (6, 7, 8)])
        (ask,) = of(AskInfo, actions)
        self.assertEqual((delivered(actions), of(Replay, actions)), ([], []))
        actions = f.on_info('s1', 1, 8, [(A, 1), (B, 6)], token=ask.token)
        (report,) = of(Report, actions)
        self.assertRewritten(report, "stream s1 was rewritten from position 6 (a new term, "
                                     f"id {B}, began")
        self.assertIn("this master had delivered 5 messages at positions 6..10 that are not "
                      "the stream's any more; the new history holds 3 messages from position "
                      "6 (its head is 8): delivering them", report.text)
        self.assertEqual([e for a in of(Deliver, actions) for e in a.entries],
                         [entry(p, B) for p in (6, 7, 8)])
        self.assertEqual(f.rewrites, 1)
        self.assertEqual(f.on_info('s1', 1, 8, [(A, 1), (B, 6)]), [])   # said once

    def test_an_info_before_the_new_terms_events_rewinds_at_once(self):
        f = self.delivered_under_a(10)
        (report,) = of(Report, f.on_info('s1', 1, 5, [(A, 1), (B, 6)]))
        self.assertRewritten(report, "delivered 5 messages at positions 6..10")
        self.assertIn("holds 0 messages from position 6 (its head is 5)", report.text)
        self.assertEqual(delivered(f.on_event('s1', [entry(6, B), entry(7, B)])), [6, 7])

    def test_an_answer_or_an_event_of_the_old_history_is_never_delivered(self):
        f = self.delivered_under_a(3)
        (replay,) = of(Replay, f.on_event('s1', [entry(5, A)]))      # 4 missed
        # a take-over at the head: nothing this master delivered was rewritten
        self.assertEqual(of(Report, f.on_info('s1', 1, 3, [(A, 1), (B, 4)])), [])
        self.assertEqual(f.on_replay(replay.token, ['s1', 1, 5, [entry(4, A)]]), [])
        self.assertEqual(delivered(f.on_event('s1', [entry(4, A)])), [])
        self.assertEqual(delivered(f.on_event('s1', [entry(4, B), entry(5, B)])), [4, 5])

    def test_a_replay_answer_of_a_history_not_known_here_asks_info_not_the_replay_again(self):
        # an older copy restored (term B from 1), then a newer one (C from 3):
        # the answer to a replay asked under B holds A's entries
        f = StreamFollower(capacity=100, backoff=lambda n: 0.5 * n,
                           start=lambda first_pos, head: first_pos)
        (replay,) = of(Replay, f.on_join('s1', 1, 2, [(A, 1), (B, 1)]))
        actions = f.on_replay(replay.token, ['s1', 1, 2, [entry(1, A), entry(2, A)]])
        (ask,) = of(AskInfo, actions)
        self.assertEqual((delivered(actions), of(Replay, actions)), ([], []))
        actions = f.on_info('s1', 1, 2, [(A, 1), (C, 3)], token=ask.token)
        self.assertEqual((delivered(actions), of(Report, actions)), ([1, 2], []))

    def test_a_rewrite_of_positions_only_passed_over_is_an_info_line(self):
        f = StreamFollower(capacity=100, backoff=lambda n: 0.5 * n)
        f.on_join('s1', 1, 10, [(A, 1)])                 # delivers from 11
        (report,) = of(Report, f.on_info('s1', 1, 7, [(A, 1), (B, 6)]))
        self.assertEqual(report.level, 'info')
        self.assertIn("had delivered 0 messages at positions 6..10", report.text)
        self.assertEqual(delivered(f.on_event('s1', [entry(6, B), entry(7, B)])), [6, 7])

    def test_a_journal_that_lost_its_tail_without_a_new_term_keeps_the_shorter_stream_line(self):
        f = self.delivered_under_a(3)
        (report,) = of(Report, f.on_info('s1', 1, 1, [(A, 1)]))
        self.assertIn("ends at position 1, before position 3", report.text)
