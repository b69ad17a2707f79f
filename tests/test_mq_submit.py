"""OrderedWampMQ's submit and replay paths against a scripted session (unit
tests: the sequencer's answers are made up here; the contract tests use a
router)."""

from autobahn.wamp.exception import ApplicationError
from twisted.internet import defer
from twisted.internet import reactor
from twisted.python import log
from twisted.trial import unittest

from buildbot_mq_ordered import config as mqconfig
from buildbot_mq_ordered.mq import OrderedWampMQ
from buildbot_mq_ordered.reorder import ReorderBuffer
from buildbot_mq_ordered.sequencer import BUSY
from buildbot_mq_ordered.sequencer import JOURNAL_ERROR
from tests.util import with_timeout


class ScriptedSession:
    """Answers submit calls with ``refusals`` journal errors, then acks."""

    def __init__(self, refusals):
        self.refusals = refusals
        self.calls = 0
        self.acked = defer.Deferred()

    def call(self, procedure, producer, batch):
        self.calls += 1
        if self.calls <= self.refusals:
            return defer.fail(ApplicationError(
                JOURNAL_ERROR, "journal write failed: database or disk is full"))
        # after the master has handled this answer
        reactor.callLater(0, self.acked.callback, None)
        return defer.succeed([batch[-1][0], self.calls])


def joined_mq(session):
    mq = OrderedWampMQ()
    mq.options = mqconfig.resolve({'router_url': 'ws://127.0.0.1:1/ws',
                                   'initial_retry_delay': 0.001})
    mq.buffer = ReorderBuffer(100)
    mq._session = session
    mq._synced = True
    return mq


class SubmitRefused(unittest.TestCase):

    @defer.inlineCallbacks
    def test_refusals_are_one_error_per_run_then_a_count(self):
        # issue 10: with the journal's disk full, masters logged hundreds of
        # info lines "submit failed ... retrying" and not one error
        lines = []
        log.addObserver(lines.append)
        self.addCleanup(log.removeObserver, lines.append)
        session = ScriptedSession(refusals=150)
        mq = joined_mq(session)
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


class ScriptedReplays:
    """Answers replay calls with ``refusals`` busy errors, then the entries."""

    def __init__(self, refusals, stream_id, entries):
        self.refusals = refusals
        self.stream_id = stream_id
        self.entries = entries
        self.calls = 0

    def call(self, procedure, first, limit):
        self.calls += 1
        if self.calls <= self.refusals:
            return defer.fail(ApplicationError(BUSY, "too many replays under way"))
        return defer.succeed([self.stream_id, 1, len(self.entries), self.entries])


class ReplayRefused(unittest.TestCase):

    @defer.inlineCallbacks
    def test_a_refused_replay_is_retried_with_backoff(self):
        # issue 10: a replay that failed without a disconnect was retried
        # only when the next stream event arrived (there may be none)
        entries = [[pos, pos, ['k'], b'\xc0'] for pos in (1, 2, 3)]
        session = ScriptedReplays(3, 'stream-1', entries)
        mq = joined_mq(session)
        mq.options['retry_delay_growth'] = 2.0
        mq.stream_id = 'stream-1'
        got = []
        done = defer.Deferred()

        def consumer(key, data):
            got.append(mq.delivery)
            if len(got) == 3:
                done.callback(None)
        mq.registry.add(consumer, ('k',), None)
        mq.buffer = ReorderBuffer(100, next_pos=1)
        mq.buffer.saw(3)                 # positions 1..3 missed
        mq._fill_holes()
        yield with_timeout(done, 30, 'the replayed positions')
        self.assertEqual(got, [(1, 1), (2, 2), (3, 3)])
        self.assertEqual(session.calls, 4)
        self.assertEqual(mq.stats['skipped'], 0)
