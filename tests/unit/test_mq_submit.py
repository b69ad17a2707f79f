"""OrderedWampMQ's submit and replay paths against a scripted session (unit
tests: the sequencer's answers are made up here; the contract tests use a
router)."""

from autobahn.wamp.exception import ApplicationError
from twisted.internet import defer
from twisted.internet import reactor
from twisted.python import log
from twisted.trial import unittest

from buildbot_mq_ordered import wire
from buildbot_mq_ordered.master import config as mqconfig
from buildbot_mq_ordered.master.mq import OrderedWampMQ
from buildbot_mq_ordered.wire import BUSY
from buildbot_mq_ordered.wire import JOURNAL_ERROR
from tests.support.util import with_timeout


class ScriptedSession:
    """Joins at the head of stream ``stream-1`` (empty); answers other calls
    through ``answer(procedure, *args)``."""

    stream_id = 'stream-1'

    def subscribe(self, handler, topic, options=None):
        self.on_stream = handler
        return defer.succeed(None)

    def call(self, procedure, *args):
        if procedure == wire.INFO:
            return defer.succeed({'stream_id': self.stream_id, 'head': 0, 'first_pos': 1})
        return self.answer(procedure, *args)


class SubmitRefusals(ScriptedSession):
    """Answers submit calls with ``refusals`` journal errors, then acks."""

    def __init__(self, refusals):
        self.refusals = refusals
        self.calls = 0
        self.acked = defer.Deferred()

    def answer(self, procedure, producer, batch):
        self.calls += 1
        if self.calls <= self.refusals:
            return defer.fail(ApplicationError(
                JOURNAL_ERROR, "journal write failed: database or disk is full"))
        # after the master has handled this answer
        reactor.callLater(0, self.acked.callback, None)
        return defer.succeed([batch[-1][0], self.calls])


class Link:
    """What the MQ reads of its RouterLink: the joined session, its URL."""

    url = 'ws://127.0.0.1:1/ws'

    def __init__(self, session):
        self.session = session


def joined_mq(testcase, session, **options):
    mq = OrderedWampMQ()
    testcase.addCleanup(mq._left)   # as the link would: the reader and the reporter stop
    mq.options = mqconfig.resolve(dict({'router_url': Link.url,
                                        'initial_retry_delay': 0.001}, **options))
    mq.link = Link(session)
    mq._joined(session)
    return mq


class SubmitRefused(unittest.TestCase):

    @defer.inlineCallbacks
    def test_refusals_are_one_error_per_run_then_a_count(self):
        # issue 10: with the journal's disk full, masters logged hundreds of
        # info lines "submit failed ... retrying" and not one error
        lines = []
        log.addObserver(lines.append)
        self.addCleanup(log.removeObserver, lines.append)
        session = SubmitRefusals(refusals=150)
        mq = joined_mq(self, session)
        mq.produce(('k',), {'x': 1})
        yield with_timeout(session.acked, 30)
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


class ReplayRefusals(ScriptedSession):
    """Answers replay calls with ``refusals`` busy errors, then the entries."""

    def __init__(self, refusals, entries):
        self.refusals = refusals
        self.entries = entries
        self.calls = 0

    def answer(self, procedure, first, limit):
        self.calls += 1
        if self.calls <= self.refusals:
            return defer.fail(ApplicationError(BUSY, "too many replays under way"))
        return defer.succeed([self.stream_id, 1, len(self.entries), self.entries])


class ReplayRefused(unittest.TestCase):

    @defer.inlineCallbacks
    def test_a_refused_replay_is_retried_with_backoff(self):
        # issue 10: a replay that failed without a disconnect was retried
        # only when the next stream event arrived (there may be none)
        entries = [[pos, pos, ['k'], b'\xc0'] for pos in (1, 2, 3, 4)]
        session = ReplayRefusals(3, entries)
        mq = joined_mq(self, session, retry_delay_growth=2.0)
        got = []
        done = defer.Deferred()

        def consumer(key, data):
            got.append(mq.delivery)
            if len(got) == 4:
                done.callback(None)
        mq.registry.add(consumer, ('k',), None)
        # position 4 arrives, 1..3 were missed
        session.on_stream(session.stream_id, entries[3:],
                          details=SessionDetails(wire.SEQUENCER_ROLE))
        yield with_timeout(done, 30, 'the replayed positions')
        self.assertEqual(got, [(1, 1), (2, 2), (3, 3), (4, 4)])
        self.assertEqual(session.calls, 4)
        self.assertEqual(mq.stats['skipped'], 0)


class SessionDetails:
    def __init__(self, publisher_authrole):
        self.publisher_authrole = publisher_authrole
