"""The journal's writer thread, through the sequencer's submit: group
commit, answers in position order after the commit, and a failed commit
failing every batch numbered after it, without losing a number; and which
commits run on the reactor instead."""

import threading

from autobahn.wamp.exception import ApplicationError
from autobahn.wamp.types import CloseDetails
from autobahn.wamp.types import ComponentConfig
from twisted.internet import defer
from twisted.internet import threads
from twisted.trial import unittest

from buildbot_mq_ordered import wire
from buildbot_mq_ordered.router import sequencer as seqmod
from buildbot_mq_ordered.router.journal import Journal
from tests.support.sequencer import RecordingLog
from tests.support.util import until
from tests.support.util import with_timeout

HOLD_TIMEOUT = 10   # seconds a held commit waits for the test, at most


class HeldJournal:
    """Wraps a journal's append_batches: records each group and the thread
    it ran in; ``hold()`` makes the next commit wait for ``release()``."""

    def __init__(self, journal):
        self.journal = journal
        self.groups = []
        self.threads = set()
        self.fail_next = None
        self._gate = self._next_gate = None
        self.entered = threading.Event()
        self._real = journal.append_batches
        journal.append_batches = self.append_batches

    def hold(self):
        self._gate = self._next_gate = threading.Event()
        self.entered.clear()

    def release(self):
        self._gate.set()

    def append_batches(self, batches):
        self.threads.add(threading.current_thread())
        self.entered.set()
        gate, self._next_gate = self._next_gate, None
        if gate is not None and not gate.wait(HOLD_TIMEOUT):
            raise RuntimeError("the test never released the commit")
        self.groups.append([b[0][0][0] for b in batches if b[0]])
        failure, self.fail_next = self.fail_next, None
        if failure is not None:
            raise failure
        return self._real(batches)


class SequencerOnJournal(unittest.TestCase):
    timeout = 30
    fsync = True    # commits that wait for a disk: in the writer thread

    def setUp(self):
        s = seqmod.Sequencer(ComponentConfig('buildbot', {}))
        s.use_journal(Journal(self.mktemp(), fsync=self.fsync), key_cache_size=100)
        s.leadership.leading = True
        s.published = []
        s.publish = lambda topic, stream_id, entries: s.published.append(
            [e[0] for e in entries])
        self.s = s
        self.held = HeldJournal(s.journal)
        self.addCleanup(self.stop)

    def stop(self):
        self.s.sequencing.stop()
        if self.s.journal is not None:      # (onLeave closed it)
            self.s.journal.close()


class WriterThread(SequencerOnJournal):

    @defer.inlineCallbacks
    def first_commit_held(self):
        """Submit one batch whose commit is held in the writer thread."""
        self.held.hold()
        first = self.s.submit('p0', [[1, ['k'], b'0']])
        # the writer thread sets the event: wait on it (in a thread), bounded
        entered = yield threads.deferToThread(self.held.entered.wait, HOLD_TIMEOUT)
        if not entered:
            self.fail("the commit did not start")
        return first

    @defer.inlineCallbacks
    def test_batches_queued_during_a_commit_are_one_commit_answered_in_order(self):
        first = yield self.first_commit_held()
        answered = []
        ds = []
        for i in range(1, 21):
            d = self.s.submit(f'p{i}', [[1, ['k'], b'1'], [2, [f'k{i}'], b'2']])
            d.addCallback(answered.append)
            ds.append(d)
        self.assertEqual(answered, [])          # nothing before its commit
        self.held.release()
        self.assertEqual((yield first), [1, 1, 0])
        yield defer.gatherResults(ds)
        self.assertEqual(answered, [[2, 1 + 2 * i, 0] for i in range(1, 21)])
        self.assertEqual(self.held.groups, [[1], [2 * i for i in range(1, 21)]])
        # one stream event per committed group, not per batch
        self.assertEqual(self.s.published, [[1], list(range(2, 42))])
        self.assertNotIn(threading.main_thread(), self.held.threads)
        self.assertEqual(self.s.info(**wire.handshake())['head'], 41)
        self.assertEqual([e[1] for e in self.s.journal.read(1, 100) if e[2] == ['k']],
                         list(range(1, 22)))

    @defer.inlineCallbacks
    def test_a_failed_commit_fails_every_batch_numbered_after_it(self):
        ok = yield self.s.submit('p', [[1, ['k'], b'1']])
        self.assertEqual(ok, [1, 1, 0])
        first = yield self.first_commit_held()   # position 2, p0
        self.held.fail_next = OSError("disk I/O error")
        after = [self.s.submit('p', [[2, ['k'], b'2']]),
                 self.s.submit('q', [[1, ['k'], b'3']])]
        self.held.release()
        for d in [first] + after:
            with self.assertRaises(ApplicationError) as e:
                yield d
            self.assertEqual(e.exception.error, wire.JOURNAL_ERROR)
            self.assertIn('disk I/O error', e.exception.args[0])
        self.flushLoggedErrors()
        self.assertEqual(self.s.published, [[1]])
        # the retries get the positions and numbers as if nothing had failed
        yield self.wait_idle()
        self.assertEqual((yield self.s.submit('p', [[2, ['k'], b'2']])), [2, 2, 1])
        self.assertEqual((yield self.s.submit('q', [[1, ['k'], b'3']])), [1, 3, 0])
        self.assertEqual([e[:2] for e in self.s.journal.read(1, 10)], [[1, 1], [2, 2], [3, 3]])

    @defer.inlineCallbacks
    def test_a_resubmission_is_answered_after_its_batch_is_committed(self):
        first = yield self.first_commit_held()
        again = self.s.submit('p0', [[1, ['k'], b'0']])
        self.assertNoResult(again)      # its mark is not safe before the commit
        self.held.release()
        self.assertEqual((yield first), [1, 1, 0])
        self.assertEqual((yield again), [1, None, 1])

    @defer.inlineCallbacks
    def test_replay_answers_only_what_was_published(self):
        yield self.s.submit('p', [[1, ['k'], b'1']])
        first = yield self.first_commit_held()
        self.held.release()
        answer = yield self.s.replay(1, 10)
        self.assertEqual(answer[2], max(e[0] for e in answer[3]))
        yield first

    def wait_idle(self):
        # the writer offers no event for idleness: the tests' bounded check
        return with_timeout(until(lambda: self.s.sequencing.writer.idle), HOLD_TIMEOUT,
                            "the writer to become idle")


class CommitsInPlace(SequencerOnJournal):
    """SQLite without fsync: a commit is cheaper than the hand-off to the
    writer thread and back, so it runs on the reactor, in the same turn."""
    fsync = False

    @defer.inlineCallbacks
    def test_submits_of_one_turn_are_one_commit_and_one_event_on_the_reactor(self):
        answers = []
        ds = [self.s.submit(p, [[1, ['k'], b'%d' % i]]).addCallback(answers.append)
              for i, p in enumerate('pqr', 1)]
        self.assertEqual(answers, [])       # held to the end of the turn
        yield defer.gatherResults(ds)
        self.assertEqual(answers, [[1, 1, 0], [1, 2, 0], [1, 3, 0]])
        self.assertEqual(self.held.groups, [[1, 2, 3]])
        self.assertEqual(self.held.threads, {threading.main_thread()})
        self.assertEqual(self.s.published, [[1, 2, 3]])
        self.assertEqual([e[:2] for e in self.s.journal.read(1, 10)], [[1, 1], [2, 2], [3, 3]])

    @defer.inlineCallbacks
    def test_prunes_and_loads_still_run_in_the_writer_thread(self):
        yield self.s.submit('p', [[1, ['k'], b'1']])
        self.held.threads.clear()
        loads = []
        real_load = self.s.journal.load

        def load():
            loads.append(threading.current_thread())
            return real_load()
        self.s.journal.load = load
        yield self.s.sequencing.writer.reload()
        self.assertEqual(len(loads), 1)
        self.assertIsNot(loads[0], threading.main_thread())


class StreamEvents(unittest.TestCase):

    def test_a_group_is_split_into_events_of_bounded_size(self):
        self.patch(wire, 'MAX_EVENT_BYTES', 10)
        entries = [[pos, 1, ['k'], b'x' * n, 7] for pos, n in enumerate([4, 4, 4, 20, 1, 1], 1)]
        events = list(seqmod._events(entries))
        self.assertEqual([[e[0] for e in ev] for ev in events], [[1, 2], [3], [4], [5, 6]])
        self.assertEqual([e for ev in events for e in ev], entries)


class PublishFails(SequencerOnJournal):
    fsync = False

    @defer.inlineCallbacks
    def test_a_group_committed_but_not_published_is_answered_not_left_waiting(self):
        def publish(*args):
            raise RuntimeError("publish broke")
        self.s.publish = publish
        with self.assertRaises(ApplicationError):
            yield with_timeout(self.s.submit('p', [[1, ['k'], b'1']]), HOLD_TIMEOUT,
                               "the submit's answer")
        self.assertEqual(len(self.flushLoggedErrors(RuntimeError)), 1)
        # committed all the same: the retry finds it sequenced
        self.assertEqual((yield self.s.submit('p', [[1, ['k'], b'1']])), [1, None, 1])


class StopWhileCommitting(SequencerOnJournal):
    """Issue 21: a commit that ended after ``onLeave`` raised AttributeError
    publishing (the journal closed), and its submitter heard an error."""

    first_commit_held = WriterThread.first_commit_held

    @defer.inlineCallbacks
    def test_a_commit_under_way_at_the_stop_is_neither_published_nor_raises(self):
        self.s.log = RecordingLog(said := [])
        first = yield self.first_commit_held()
        queued = self.s.submit('q', [[1, ['k'], b'1']])
        self.held.release()
        # the commit ends in the writer thread while the session leaves;
        # its outcome reaches the reactor after onLeave
        self.s.onLeave(CloseDetails(reason=CloseDetails.REASON_DEFAULT))
        # the commit's outcome is on its way to the reactor: let it come
        yield with_timeout(until(lambda: not self.s.sequencing.writer.commits.busy),
                           HOLD_TIMEOUT, "the commit under way to end")
        self.assertEqual(self.flushLoggedErrors(), [])
        self.assertEqual([level for level, _, _ in said], [])
        self.assertEqual(self.s.published, [])
        self.assertEqual(self.held.groups, [[1]])     # committed all the same
        # no answer: the router tells the callers (the callee left)
        self.assertNoResult(first)
        self.assertNoResult(queued)
        with self.assertRaises(ApplicationError):
            self.s.submit('r', [[1, ['k'], b'2']])
