"""A sequencer on a PostgreSQL journal that lost its lease."""


from autobahn.wamp.exception import ApplicationError
from twisted.trial import unittest

from buildbot_mq_ordered import wire
from tests.support.sequencer import RecordingLog
from tests.support.sequencer import make_sequencer


class SteppingDown(unittest.TestCase):
    """A leader on a PostgreSQL journal that lost its lease (leasekeeper.py
    tells it): it answers nothing more and its journal writes nothing."""

    def test_a_deposed_leader_refuses_everything_and_writes_nothing(self):
        from buildbot_mq_ordered.router.journal import lease
        from buildbot_mq_ordered.router.journal import open_journal
        from tests.support.pgutil import fresh_database
        s = make_sequencer(open_journal(fresh_database(self)), log=RecordingLog(said := []))
        self.addCleanup(s.journal.close)
        s.journal.fenced = True
        db = s.journal.new_connection()
        self.addCleanup(db.close)
        leadership = s.leadership
        leadership.term = lease.acquire(db.get(), 'me', 60).term
        # as Leadership.lead does: the lease's first load begins a term
        s.journal.take_lease(leadership.term)
        self.successResultOf(s.sequencing.reload())
        term_id = s.journal.term_id
        self.assertEqual(s.info(**wire.handshake())['terms'][-1], [term_id, 1])
        self.assertEqual(self.successResultOf(s.submit('p', [[1, ['a'], b'1']])), [1, 1, 0])
        self.assertEqual(s.info(**wire.handshake())['term'], leadership.term)
        leadership.step_down(leadership.term, "its lease was not renewed in time")
        self.assertEqual([level for level, _, _ in said], ['warn'])
        for call, args, kwargs in ((s.submit, ('p', [[2, ['a'], b'2']]), {}),
                                   (s.replay, (1,), {}), (s.info, (), wire.handshake())):
            with self.assertRaises(ApplicationError) as e:
                call(*args, **kwargs)
            self.assertEqual(e.exception.error, wire.JOURNAL_ERROR)
        with self.assertRaises(lease.Deposed):
            s.journal.append([(2, 2, ('a',), b'2', term_id)], 'p', 2)
        self.assertEqual(s.journal.counts()['entries'], 1)
        self.assertEqual(s.published, [(wire.STREAM, [(1, 1, ('a',), b'1', term_id)])])
