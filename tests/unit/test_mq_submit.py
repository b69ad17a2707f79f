"""OrderedWampMQ's submit and replay paths against a scripted session (unit
tests on a Clock: the sequencer's answers are made up here, and the link
is a stand-in that joins at once; the contract tests use a router)."""

import functools

from autobahn.wamp.exception import ApplicationError
from twisted.internet import defer
from twisted.internet import task
from twisted.python import log
from twisted.trial import unittest

from buildbot_mq_ordered import wire
from buildbot_mq_ordered.master.mq import OrderedWampMQ
from buildbot_mq_ordered.wire import BUSY
from buildbot_mq_ordered.wire import JOURNAL_ERROR
from tests.support.util import FakeConfig
from tests.unit.streammodel import with_terms

URL = 'ws://127.0.0.1:1/ws'


class ScriptedSession:
    """Joins at the head of stream ``stream-1`` (empty); answers other calls
    through ``answer(procedure, *args)``."""

    stream_id = 'stream-1'

    def subscribe(self, handler, topic, options=None):
        self.on_stream = handler
        return defer.succeed(None)

    def call(self, procedure, *args, **kwargs):
        if procedure == wire.INFO:
            return defer.succeed({'stream_id': self.stream_id, 'head': 0, 'first_pos': 1})
        return self.answer(procedure, *args)

    def is_attached(self):
        return False    # the master's reports are not sent


class ScriptedLink:
    """What the MQ makes instead of a RouterLink: joined to ``session`` as
    soon as it is started, left when stopped."""

    url = URL
    joins = attempts = 1

    def __init__(self, session, urls, realm, on_join, on_leave, backoff, **kwargs):
        self._session = session
        self._on_join = on_join
        self._on_leave = on_leave
        self.session = None

    def start(self):
        self.session = self._session
        self._on_join(self.session)
        return defer.Deferred()     # the keep-alive loop: runs until stopped

    def stop(self):
        if self.session is not None:
            self.session = None
            self._on_leave()
        return defer.succeed(None)

    def move_on(self):
        pass


def joined_mq(testcase, session, clock=None, **options):
    """A started MQ on a Clock, joined to session; stopped at cleanup."""
    clock = clock or task.Clock()
    mq = OrderedWampMQ(clock=clock, link_class=functools.partial(ScriptedLink, session))
    mq.reconfigServiceWithBuildbotConfig(FakeConfig(dict(
        {'type': 'ordered-wamp', 'router_url': URL, 'initial_retry_delay': 0.001},
        **options)))
    mq.startService()
    testcase.addCleanup(stop, mq, clock)
    testcase.assertIs(mq.session, session)
    return mq, clock


def stop(mq, clock):
    """Stop the MQ, past its shutdown_timeout if it waits for anything."""
    d = mq.stopService()
    clock.pump([1.0] * 30)
    return d


def run(clock, step, until, most=1000):
    """Advance clock by step until until() (at most most steps)."""
    for _ in range(most):
        if until():
            return
        clock.advance(step)
    raise AssertionError(f"not done after {most} steps of {step}s")


class SubmitRefusals(ScriptedSession):
    """Answers submit calls with ``refusals`` journal errors, then acks."""

    def __init__(self, refusals):
        self.refusals = refusals
        self.calls = 0

    def answer(self, procedure, producer, batch):
        self.calls += 1
        if self.calls <= self.refusals:
            return defer.fail(ApplicationError(
                JOURNAL_ERROR, "journal write failed: database or disk is full"))
        return defer.succeed([batch[-1][0], self.calls, batch[0][0] - 1])


class SubmitRefused(unittest.TestCase):

    def test_refusals_are_one_error_per_run_then_a_count(self):
        # issue 10: with the journal's disk full, masters logged hundreds of
        # info lines "submit failed ... retrying" and not one error
        lines = []
        log.addObserver(lines.append)
        self.addCleanup(log.removeObserver, lines.append)
        session = SubmitRefusals(refusals=150)
        # a backoff that does not grow: 150 refusals in 150 ms
        mq, clock = joined_mq(self, session, max_retry_delay=0.001, retry_delay_jitter=0)
        mq.produce(('k',), {'x': 1})
        run(clock, 0.001, lambda: session.calls > 150)
        self.assertEqual(session.calls, 151)
        errors = self.flushLoggedErrors(RuntimeError)
        self.assertEqual(len(errors), 2)   # the 1st and the 100th of the run
        first = str(errors[0].value)
        for part in ('ws://127.0.0.1:1/ws', JOURNAL_ERROR, 'database or disk is full',
                     '1 messages wait in the outbox', '1 refused in a row'):
            self.assertIn(part, first)
        self.assertIn('100 refused in a row', str(errors[1].value))
        self.assertEqual(len(mq.outbox), 0)
        said = [' '.join(e['message']) for e in lines if e.get('message')]
        self.assertIn("ordered-wamp: the sequencer accepts submits again (after 150 refused)",
                      said)
        self.assertFalse(any('submit failed' in s for s in said), said)


class HeldSubmits(ScriptedSession):
    """Holds each submit's answer until the test gives it."""

    def __init__(self):
        self.submits = []      # (producer id, producer_seqs, Deferred)
        self.mark = 0          # the producer's mark in the journal

    def answer(self, procedure, producer, batch):
        d = defer.Deferred()
        self.submits.append((producer, [m[0] for m in batch], d))
        return d

    def ack(self, mark, last_pos=None, prior=None):
        """Answer the last submit; prior: the journal's mark before it (by
        default the last mark answered)."""
        prior = self.mark if prior is None else prior
        self.mark = mark
        self.submits[-1][2].callback([mark, last_pos, prior])


class ForgedAck(unittest.TestCase):
    """Issue 21: on an open router another client submitted under a
    master's producer id with producer_seq 2**62; the master's next submit
    was acknowledged with that mark and its outbox dropped messages it had
    never sent, silently."""

    def test_a_mark_beyond_what_was_sent_is_an_error_and_drops_nothing_unsent(self):
        session = HeldSubmits()
        mq, clock = joined_mq(self, session)
        mq.produce(('k',), 1)
        clock.advance(0)
        session.ack(1)
        mq.produce(('k',), 2)
        clock.advance(0)
        mq.produce(('k',), 3)                 # produced while 2 is in flight
        mq.produce(('k',), 4)
        self.assertEqual([s[1] for s in session.submits], [[1], [2]])
        session.ack(2 ** 62)                  # the forger's mark
        (error,) = self.flushLoggedErrors(RuntimeError)
        for part in (f"producer id {mq.producer_id} up to producer sequence number "
                     f"{2 ** 62}", "this master sent only up to 2", "--secret-file"):
            self.assertIn(part, str(error.value))
        # 3 and 4 were never sent: kept, and sent now
        self.assertEqual(session.submits[-1][:2], (mq.producer_id, [3, 4]))
        self.assertEqual(len(mq.outbox), 2)
        session.ack(2 ** 62)                  # the same run: not said again
        self.assertEqual(self.flushLoggedErrors(RuntimeError), [])
        self.assertEqual(len(mq.outbox), 0)
        mq.produce(('k',), 5)
        clock.advance(0)
        session.ack(5)                        # a true mark ends the run
        mq.produce(('k',), 6)
        clock.advance(0)
        session.ack(2 ** 62)
        self.assertEqual(len(self.flushLoggedErrors(RuntimeError)), 1)


class JournalLostAcknowledged(unittest.TestCase):
    """Issue 22 item 3: a failover to a replica that was behind lost
    messages the journal had acknowledged to a master, silently."""

    def test_the_journals_lost_acknowledged_messages_are_one_error(self):
        session = HeldSubmits()
        mq, clock = joined_mq(self, session)
        for i in range(3):
            mq.produce(('k',), i)
        clock.advance(0)
        session.ack(3, last_pos=3)
        mq.produce(('k',), 3)
        clock.advance(0)
        session.ack(4, last_pos=2, prior=1)   # the new leader's journal had 1 of 1..3
        (error,) = self.flushLoggedErrors(RuntimeError)
        self.assertIn(f"producer id {mq.producer_id}, producer sequence numbers 2..3 are "
                      "no longer in it", str(error.value))
        self.assertEqual((mq.stats['acknowledged_lost'], len(mq.outbox)), (2, 0))
        mq.produce(('k',), 4)
        clock.advance(0)
        session.ack(5, last_pos=3)
        self.assertEqual(self.flushLoggedErrors(RuntimeError), [])


class ReplayRefusals(ScriptedSession):
    """Answers replay calls with ``refusals`` busy errors, then the entries."""

    def __init__(self, refusals, entries, clock):
        self.refusals = refusals
        self.entries = entries
        self.clock = clock
        self.calls = 0
        self.times = []

    def answer(self, procedure, first, limit):
        self.calls += 1
        self.times.append(self.clock.seconds())
        if self.calls <= self.refusals:
            return defer.fail(ApplicationError(BUSY, "too many replays under way"))
        return defer.succeed([self.stream_id, 1, len(self.entries), self.entries])


class ReplayRefused(unittest.TestCase):

    def test_a_refused_replay_is_retried_with_backoff(self):
        # issue 10: a replay that failed without a disconnect was retried
        # only when the next stream event arrived (there may be none)
        with_terms(self)
        entries = [[pos, pos, ['k'], b'\xc0', 1] for pos in (1, 2, 3, 4)]
        clock = task.Clock()
        session = ReplayRefusals(3, entries, clock)
        mq, _ = joined_mq(self, session, clock, initial_retry_delay=0.25,
                          retry_delay_growth=2.0)
        got = []

        def consumer(key, data):
            got.append(mq.delivery)
        mq.registry.add(consumer, ('k',), None)
        # position 4 arrives, 1..3 were missed
        session.on_stream(session.stream_id, entries[3:],
                          details=SessionDetails(wire.SEQUENCER_ROLE))
        run(clock, 0.25, lambda: len(got) == 4)
        self.assertEqual(got, [(1, 1), (2, 2), (3, 3), (4, 4)])
        # retried after the configured backoff (0.25, 0.5, then 1 s), well
        # before the heartbeat's info() would find the hole again
        self.assertEqual(session.times, [0, 0.25, 0.75, 1.75])
        self.assertEqual(session.calls, 4)
        self.assertEqual(mq.stats['skipped'], 0)


class SessionDetails:
    def __init__(self, publisher_authrole):
        self.publisher_authrole = publisher_authrole
