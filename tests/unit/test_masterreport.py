"""A master's report (masterreport.py): what it says, when it is sent."""

from twisted.internet import task
from twisted.trial import unittest

from buildbot_mq_ordered import wire
from buildbot_mq_ordered.master.mq import OrderedWampMQ
from buildbot_mq_ordered.master.report import MasterReporter
from buildbot_mq_ordered.master.report import build_report
from tests.unit.streammodel import entry
from tests.unit.streammodel import with_terms


class FakeSession:
    def __init__(self):
        self.published = []
        self.attached = True

    def is_attached(self):
        return self.attached

    def publish(self, topic, report):
        if not self.attached:
            raise RuntimeError("transport lost")
        self.published.append((topic, report))


class Report(unittest.TestCase):

    def test_a_fresh_mq(self):
        mq = OrderedWampMQ()
        mq.setName('m1')
        r = build_report(mq, 'joined')
        self.assertEqual(r, {
            'master': 'm1', 'producer_id': mq.producer_id, 'state': 'joined',
            'stream_id': None, 'delivered_pos': None, 'delivered': 0, 'produced': 0,
            'outbox': 0, 'buffer': 0, 'skipped': 0, 'replayed': 0, 'reconnects': 0,
            'interval': 2.0})

    def test_where_it_stands(self):
        with_terms(self)
        mq = OrderedWampMQ()
        f = mq.follower
        f.on_join('s1', 1, 10)                      # delivers from 11
        f.on_event('s1', [entry(13)])               # held: 11, 12 missing
        self.assertEqual(f.on_replay(1, ['s1', 1, 13, [entry(11)]])[0].entries, [entry(11)])
        r = build_report(mq, 'joined')
        self.assertEqual((r['stream_id'], r['delivered_pos'], r['buffer'], r['replayed']),
                         ('s1', 11, 1, 1))
        self.assertTrue(r['master'].startswith('producer-'))

    def test_the_buildbot_master_name_first(self):
        class Parent:
            class master:
                name = 'host:/srv/master1'
        mq = OrderedWampMQ()
        mq.parent = Parent()
        self.assertEqual(build_report(mq, 'joined')['master'], 'host:/srv/master1')


class Reporter(unittest.TestCase):

    def test_at_once_on_join_then_every_interval_and_a_last_one(self):
        clock = task.Clock()
        mq = OrderedWampMQ()
        reporter = MasterReporter(mq, every=2.0, clock=clock)
        session = FakeSession()
        reporter.start(session)
        self.assertEqual([(t, r['state']) for t, r in session.published],
                         [(wire.REPORT, 'joined')])
        clock.advance(2.0)
        clock.advance(2.0)
        self.assertEqual(len(session.published), 3)
        reporter.stop(final=True)
        self.assertEqual(session.published[-1][1]['state'], 'stopped')
        clock.advance(10)
        self.assertEqual(len(session.published), 4)

    def test_a_lost_session_costs_nothing(self):
        clock = task.Clock()
        reporter = MasterReporter(OrderedWampMQ(), clock=clock)
        session = FakeSession()
        reporter.start(session)
        session.attached = False
        clock.advance(2.0)          # not attached: skipped
        session.is_attached = lambda: True
        clock.advance(2.0)          # publish raises: logged, not raised
        self.assertEqual(len(session.published), 1)
        reporter.stop()
        reporter.stop(final=True)   # no session: nothing
