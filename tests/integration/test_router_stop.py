"""A router stopped (SIGTERM) while masters submit logs no traceback.

Issue 21: a commit that ended after the sequencer left raised
``AttributeError: 'NoneType' object has no attribute 'stream_id'``
publishing (the journal was closed), and its submitter heard an error. With
SQLite and ``--fsync``, and with PostgreSQL, commits run in the writer
thread: masters producing all along keep one under way at the stop more
often than not. Nothing the masters were told was committed may be lost:
what the consuming master received is in the journal, in order."""

import sqlite3

from twisted.internet import defer
from twisted.internet import task
from twisted.internet import threads
from twisted.trial import unittest

from tests.support.pgutil import fresh_database
from tests.support.pgutil import journal_rows
from tests.support.router import Router
from tests.support.util import Collector
from tests.support.util import batched_timers_fired
from tests.support.util import start_master
from tests.support.util import stop_master

EVERY = 0.002         # seconds between two messages of each master
BEFORE_STOP = 300     # messages received before the router is stopped
STOP_TIMEOUT = 60     # seconds the stop may take, at most
# what a clean stop's log must not hold
NOT_IN_LOG = ('Traceback', 'Unhandled error', 'AttributeError', 'onUserError')


class RouterStopUnderLoad(unittest.TestCase):
    timeout = 240

    @defer.inlineCallbacks
    def stop_under_load(self, router):
        """Start router, two masters producing, stop it while they do;
        returns what the consuming master received."""
        router.start()
        self.addCleanup(router.cleanup)
        masters = []
        for _ in range(2):
            masters.append((yield start_master(self, router)))
        got = Collector(masters[1])
        yield masters[1].startConsuming(got, ('stop', None))
        sent = [0]

        def produce():
            for i, m in enumerate(masters):
                m.produce(('stop', str(i)), {'n': sent[0]})
            sent[0] += 1
        producing = task.LoopingCall(produce)
        producing.start(EVERY)
        self.addCleanup(lambda: producing.running and producing.stop())
        yield got.wait_for(BEFORE_STOP, 60)
        # in a thread: the masters go on submitting while the router stops
        yield threads.deferToThread(router.stop, timeout=STOP_TIMEOUT)
        producing.stop()
        for m in masters:
            yield stop_master(m)
        # their calls' timers: pending after they left, trial's reactor is unclean
        yield batched_timers_fired()
        self.assertFalse(router.running)
        with open(router.log_path, errors='replace') as f:
            log = f.read()
        self.assertIn('sequencer ready', log)     # the sequencer's log is there
        found = [text for text in NOT_IN_LOG if text in log]
        self.assertEqual(found, [], f"the router's log after the stop:\n{log[-6000:]}")
        return got.received

    def assertReceivedIsInTheJournal(self, received, rows):
        journal = {pos: data for pos, data in rows}
        positions = [r[2][0] for r in received]
        self.assertEqual(positions, sorted(set(positions)))
        self.assertLessEqual(set(positions), set(journal))

    @defer.inlineCallbacks
    def test_sqlite_with_fsync(self):
        router = Router(extra_args=['--fsync'])
        received = yield self.stop_under_load(router)
        db = sqlite3.connect(f'{router.cbdir}/sequencer.sqlite')
        self.addCleanup(db.close)
        self.assertReceivedIsInTheJournal(
            received, db.execute("SELECT pos, data FROM entries").fetchall())

    @defer.inlineCallbacks
    def test_postgresql(self):
        url = fresh_database(self)
        received = yield self.stop_under_load(Router(extra_args=['--journal', url]))
        self.assertReceivedIsInTheJournal(
            received, journal_rows(url, "SELECT pos, data FROM entries"))
