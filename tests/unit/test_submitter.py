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
from buildbot_mq_ordered.util.backoff import Backoff

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


class SubmitterCase(unittest.TestCase):
    """A Submitter on a Clock, its session answered by each test."""

    def setUp(self):
        self.clock = task.Clock()
        self.producer = Producer(backoff=Backoff(2.0, 1.5, 10.0))
        self.session = Session()
        self.reader = Reader(self.session)
        self.acked = []
        self.submitter = Submitter(self.producer, 'p1', self.reader, lambda: 'ws://r/ws',
                                   self.acked.append, clock=self.clock)
        self.lines = []
        log.addObserver(self.lines.append)
        self.addCleanup(log.removeObserver, self.lines.append)

    def produce(self, n):
        for _ in range(n):
            self.producer.produce(('k',), {}, BIG)
            self.submitter.soon()

    def said(self):
        return [' '.join(e['message']) for e in self.lines if e.get('message')]


class Submitting(SubmitterCase):

    def test_a_burst_is_one_batch_and_one_batch_is_in_flight(self):
        self.produce(3)
        self.assertEqual(self.session.calls, [])       # at the next turn
        self.clock.advance(0)
        self.produce(2)
        self.clock.advance(0)
        self.assertEqual([b for b, _ in self.session.calls], [[1, 2, 3]])
        self.session.calls[0][1].callback([3, 17, 0])
        self.assertEqual(self.acked, [17])
        self.assertEqual([b for b, _ in self.session.calls], [[1, 2, 3], [4, 5]])

    def test_an_answer_on_a_session_that_left_is_ignored(self):
        self.produce(1)
        self.clock.advance(0)
        self.reader.session = Session()                  # left and joined again
        self.session.calls[0][1].callback([1, 1, 0])
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
        self.assertIn("retrying with backoff (next in 2s, 1 refused in a row)",
                      str(error.value))
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


class Pace(unittest.TestCase):
    """Issue 21: with the journal's disk full for 10 s, each master was
    refused 757-780 times although it said "retrying every 0.5s": every
    produce flushed at the next turn, past the retry's delay."""

    def test_refusals_keep_the_backoffs_pace_however_much_is_produced(self):
        clock = task.Clock()
        full_until = 10.0
        attempts = []

        class DiskFull:
            """Refuses submits for 10 s, then acks; each answer after 5 ms."""

            def call(self, procedure, producer_id, batch):
                attempts.append(clock.seconds())
                d = defer.Deferred()
                if clock.seconds() < full_until:
                    answer = (d.errback, ApplicationError(wire.JOURNAL_ERROR, 'disk full'))
                else:
                    answer = (d.callback, [batch[-1][0], batch[-1][0], batch[0][0] - 1])
                clock.callLater(0.005, *answer)
                return d

        producer = Producer(backoff=Backoff(0.5, 1.5, 10.0))   # the config's defaults
        submitter = Submitter(producer, 'p1', Reader(DiskFull()), lambda: 'ws://r/ws',
                              clock=clock)
        for _ in range(10000):                         # 1,000 a second for 10 s
            producer.produce(('k',), {}, BIG)
            submitter.soon()
            clock.advance(0.001)
        # refused at 0, then after 0.5, 0.75, 1.125, 1.69 and 2.53 s (and
        # each answer's 5 ms): 6 attempts; the 7th, 3.8 s later, is after 10 s
        refused = [t for t in attempts if t < full_until]
        self.assertEqual(len(refused), 6, refused)
        self.assertEqual(len(attempts), 6)
        errors = self.flushLoggedErrors(RuntimeError)
        self.assertEqual(len(errors), 1)
        self.assertIn("retrying with backoff (next in 0.5s, 1 refused in a row)",
                      str(errors[0].value))
        # room again: the next attempt is acknowledged, and each ack sends
        # the next batch at once until the outbox is empty
        clock.advance(3.8)
        self.assertEqual(len(attempts), 7)
        for _ in range(5):
            clock.advance(0.005)
        self.assertEqual(len(producer.outbox), 0)
        self.assertEqual(len(attempts), 6 + 10000 // wire.MAX_BATCH)
        self.assertEqual(producer.refusals.count, 0)


class BackingOff(SubmitterCase):
    """A refused submit waits out its backoff; a join does not."""

    def refuse(self, n):
        self.session.calls[n][1].errback(ApplicationError(wire.JOURNAL_ERROR, 'disk full'))

    def test_the_delay_grows_with_the_refusals_in_a_row(self):
        self.produce(1)
        self.clock.advance(0)
        for n, delay in enumerate([2.0, 3.0, 4.5, 6.75, 10.0, 10.0]):
            self.refuse(n)
            self.produce(10)
            self.clock.advance(delay - 0.01)
            self.assertEqual(len(self.session.calls), n + 1)
            self.clock.advance(0.01)
            self.assertEqual(len(self.session.calls), n + 2)
        self.assertEqual(len(self.flushLoggedErrors(RuntimeError)), 1)
        self.session.calls[-1][1].callback([61, 9, 0])
        self.assertEqual(len(self.producer.outbox), 0)

    def test_a_join_submits_at_once_and_its_ack_ends_the_wait(self):
        self.produce(1)
        self.clock.advance(0)
        self.refuse(0)
        self.flushLoggedErrors(RuntimeError)
        self.session = self.reader.session = Session()   # left and joined again
        self.submitter.flush()
        self.assertEqual([b for b, _ in self.session.calls], [[1]])
        self.session.calls[0][1].callback([1, 1, 0])
        self.produce(1)
        self.clock.advance(0)                             # not the old 2 s
        self.assertEqual([b for b, _ in self.session.calls], [[1], [2]])

    def test_stop_cancels_the_wait(self):
        self.produce(1)
        self.clock.advance(0)
        self.refuse(0)
        self.flushLoggedErrors(RuntimeError)
        self.submitter.stop()
        self.assertEqual(self.clock.getDelayedCalls(), [])


class OwnLoss(SubmitterCase):
    """Issue 22 item 3: after a failover to a replica that was behind, the
    journal no longer held messages acknowledged to a master, and nothing
    said so. The answer's third element is the producer's mark in the
    journal before the batch."""

    def ack(self, n, answer):
        self.session.calls[n][1].callback(answer)

    def errors(self):
        return [str(e.value) for e in self.flushLoggedErrors(RuntimeError)]

    def test_a_prior_mark_below_what_was_acknowledged_is_one_error_naming_the_range(self):
        self.produce(5)
        self.clock.advance(0)
        self.ack(0, [5, 105, 0])
        self.produce(3)
        self.clock.advance(0)
        self.ack(1, [8, 53, 2])              # the journal kept this producer's 1..2
        (error,) = self.errors()
        self.assertIn("the journal lost 3 messages it had acknowledged to this master: "
                      "producer id p1, producer sequence numbers 3..5 are no longer in it",
                      error)
        self.assertIn("not submitted again: lost", error)
        self.assertEqual((self.producer.acknowledged.lost, len(self.producer.outbox)), (3, 0))
        self.assertEqual(self.acked, [105, 53])
        self.produce(1)                      # the journal numbers on from 8: said once
        self.clock.advance(0)
        self.ack(2, [9, 54, 8])
        self.assertEqual(self.errors(), [])
        self.assertEqual(self.producer.acknowledged.mark, 9)

    def test_a_batch_after_the_outboxs_own_drops_is_no_loss(self):
        self.producer.outbox.max_messages = 3
        self.produce(2)
        self.clock.advance(0)
        self.ack(0, [2, 2, 0])
        self.reader.session = None           # left: 3..10 produced, 3..7 dropped
        self.produce(8)
        self.reader.session = self.session
        self.submitter.flush()
        self.assertEqual(self.session.calls[1][0], [8, 9, 10])
        self.ack(1, [10, 5, 2])
        self.assertEqual([e for e in self.errors() if 'journal lost' in e], [])
        self.assertEqual(self.producer.acknowledged.lost, 0)

    def test_a_mark_forgotten_with_its_entries_by_retention_is_no_loss(self):
        self.produce(2)
        self.clock.advance(0)
        self.ack(0, [2, 40, 0])
        self.submitter.first_retained = lambda: 41    # position 40 is gone too
        self.produce(1)
        self.clock.advance(0)
        self.ack(1, [3, 900, 0])
        self.assertEqual(self.errors(), [])
        self.assertEqual(self.producer.acknowledged.mark, 3)

    def test_elements_a_later_minor_appends_to_the_answer_are_ignored(self):
        self.produce(2)
        self.clock.advance(0)
        self.ack(0, [2, 40, 0, 'later'])
        self.assertEqual((self.errors(), self.acked, len(self.producer.outbox)), ([], [40], 0))

    def test_an_answer_of_another_release_keeps_the_batch_and_is_retried(self):
        self.produce(3)
        self.clock.advance(0)
        self.ack(0, [3, 17])                 # a 0.4 sequencer: no prior mark
        (error,) = self.errors()
        self.assertIn("refused a submit (a malformed answer: [3, 17])", error)
        self.assertEqual((self.acked, len(self.producer.outbox)), ([], 3))
        self.clock.advance(2.0)              # the refusals' backoff
        self.assertEqual([b for b, _ in self.session.calls], [[1, 2, 3], [1, 2, 3]])
