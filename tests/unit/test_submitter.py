"""Submitter: the Producer's batches on the joined session, on a Clock
(the session's answers are given by each test)."""

from autobahn.wamp.exception import ApplicationError
from twisted.internet import defer
from twisted.internet import task
from twisted.python import log
from twisted.trial import unittest

from buildbot_mq_ordered import wire
from buildbot_mq_ordered.master.producer import Producer
from buildbot_mq_ordered.master.submitter import Submitter

BIG = 2 ** 20


class Session:
    """Records submit calls; each waits for the test's answer."""

    def __init__(self):
        self.calls = []       # (batch, Deferred)

    def call(self, procedure, producer_id, batch):
        assert procedure == wire.SUBMIT
        d = defer.Deferred()
        self.calls.append(([m[0] for m in batch], d))
        return d


class Reader:
    """What the Submitter reads of its StreamReader."""

    def __init__(self, session):
        self.session = session
        self.moved_on = 0

    def no_sequencer(self, failure):
        if failure.check(ApplicationError) and failure.value.error == wire.NO_SEQUENCER:
            self.moved_on += 1
            return True
        return False


class Submitting(unittest.TestCase):

    def setUp(self):
        self.clock = task.Clock()
        self.producer = Producer()
        self.session = Session()
        self.reader = Reader(self.session)
        self.acked = []
        self.submitter = Submitter(self.producer, 'p1', self.reader, lambda: 'ws://r/ws',
                                   self.acked.append, retry_delay=2.0, clock=self.clock)
        self.lines = []
        log.addObserver(self.lines.append)
        self.addCleanup(log.removeObserver, self.lines.append)

    def produce(self, n):
        for _ in range(n):
            self.producer.produce(('k',), {}, BIG)
            self.submitter.soon()

    def said(self):
        return [' '.join(e['message']) for e in self.lines if e.get('message')]

    def test_a_burst_is_one_batch_and_one_batch_is_in_flight(self):
        self.produce(3)
        self.assertEqual(self.session.calls, [])       # at the next turn
        self.clock.advance(0)
        self.produce(2)
        self.clock.advance(0)
        self.assertEqual([b for b, _ in self.session.calls], [[1, 2, 3]])
        self.session.calls[0][1].callback([3, 17])
        self.assertEqual(self.acked, [17])
        self.assertEqual([b for b, _ in self.session.calls], [[1, 2, 3], [4, 5]])

    def test_an_answer_on_a_session_that_left_is_ignored(self):
        self.produce(1)
        self.clock.advance(0)
        self.reader.session = Session()                  # left and joined again
        self.session.calls[0][1].callback([1, 1])
        self.assertEqual((self.acked, len(self.producer.outbox)), ([], 1))
        self.clock.advance(10)                           # nor retried: the join resubmits
        self.assertEqual(len(self.session.calls), 1)

    def test_a_lost_call_is_retried_after_the_delay_quietly(self):
        self.produce(1)
        self.clock.advance(0)
        self.session.calls[0][1].errback(ApplicationError(ApplicationError.CANCELED, 'gone'))
        (line,) = self.said()
        self.assertTrue(line.startswith("ordered-wamp: submit failed (") and
                        line.endswith("); retrying"), line)
        self.clock.advance(1.9)
        self.assertEqual(len(self.session.calls), 1)
        self.clock.advance(0.1)
        self.assertEqual([b for b, _ in self.session.calls], [[1], [1]])
        self.assertEqual(self.flushLoggedErrors(), [])

    def test_a_refusal_is_an_error_naming_the_router_then_retried(self):
        self.produce(1)
        self.clock.advance(0)
        self.session.calls[0][1].errback(ApplicationError(wire.JOURNAL_ERROR, 'disk full'))
        (error,) = self.flushLoggedErrors(RuntimeError)
        self.assertIn("the sequencer at ws://r/ws refused a submit "
                      f"({wire.JOURNAL_ERROR}: disk full)", str(error.value))
        self.assertIn("retrying every 2.0s", str(error.value))
        self.clock.advance(2.0)
        self.assertEqual(len(self.session.calls), 2)

    def test_no_sequencer_moves_on_and_waits_for_the_next_join(self):
        self.produce(1)
        self.clock.advance(0)
        self.session.calls[0][1].errback(ApplicationError(wire.NO_SEQUENCER, 'none'))
        self.clock.advance(10)
        self.assertEqual((self.reader.moved_on, len(self.session.calls)), (1, 1))

    def test_stop_cancels_the_retries(self):
        self.produce(1)
        self.clock.advance(0)
        self.session.calls[0][1].errback(ApplicationError(ApplicationError.CANCELED, 'gone'))
        self.submitter.stop()
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_nothing_is_sent_without_a_session(self):
        self.reader.session = None
        self.produce(1)
        self.clock.advance(0)
        self.assertEqual(self.session.calls, [])
