"""The lease keeper's moves (leasekeeper.py), without a database: the
calls are answered by the test, on a task.Clock."""

from types import SimpleNamespace

from twisted.internet import defer
from twisted.internet import task
from twisted.trial import unittest

from buildbot_mq_ordered.router.journal import lease as lease_sql
from buildbot_mq_ordered.router.leasekeeper import LeaseKeeper
from tests.support.sequencer import RecordingLog


class Busy(Exception):
    sqlstate = '55P03'     # lock_not_available: lock_timeout on the lease's row


class Away(Exception):
    pass


class Connection:
    closed = 0

    def close(self):
        self.closed += 1


class Owner:
    def __init__(self):
        self.did = []

    def lead(self, term):
        self.did.append(('lead', term))

    def step_down(self, term, reason):
        self.did.append(('step_down', term, reason))


class Database:
    """Answers each call with the next scripted answer for its function: a
    value, an exception, a Deferred (answered later), or a function of the
    clock (which may advance it: a wait)."""

    def __init__(self, clock):
        self.clock = clock
        self.answers = {lease_sql.acquire: [], lease_sql.renew: []}
        self.calls = []

    def run(self, f, conn, *args):
        self.calls.append((f.__name__, self.clock.seconds()))
        answer = self.answers[f].pop(0)
        if isinstance(answer, defer.Deferred):
            return answer
        if isinstance(answer, Exception):
            return defer.fail(answer)
        if callable(answer):
            answer = answer()
        return defer.succeed(answer)


class KeeperTest(unittest.TestCase):

    def setUp(self):
        self.clock = task.Clock()
        self.clock.advance(100)
        self.db = Database(self.clock)
        self.owner = Owner()
        self.conn = Connection()
        journal = SimpleNamespace(name='pg', new_connection=lambda: self.conn)
        self.keeper = LeaseKeeper(journal, self.owner, RecordingLog(said := []),
                                  clock=self.clock, run=self.db.run)
        self.said = said
        self.addCleanup(lambda: self.keeper._loop.running and self.keeper._loop.stop())

    def answer(self, f, *answers):
        self.db.answers[f].extend(answers)

    def stepped_down(self):
        return [d for d in self.owner.did if d[0] == 'step_down']


class Keeping(KeeperTest):

    def test_a_grant_that_waited_is_renewed_at_once_and_kept(self):
        def waited():
            self.clock.advance(2.2)          # the acquire waited for the row
            return lease_sql.Grant(1, 2.9)
        self.answer(lease_sql.acquire, waited)
        self.answer(lease_sql.renew, 3.0, 3.0, 3.0)
        self.keeper.start()
        self.assertEqual(self.owner.did, [('lead', 1)])
        self.assertEqual(self.db.calls, [('acquire', 100), ('renew', 102.2)])
        self.clock.advance(1)                # the regular try, after the late grant
        self.assertEqual(self.stepped_down(), [])
        self.assertTrue(self.keeper.lease.leading)

    def test_a_busy_renewal_keeps_the_lead_until_the_lease_runs_out(self):
        self.answer(lease_sql.acquire, lease_sql.Grant(1, 3.0), None)
        self.answer(lease_sql.renew, Busy(), Busy())
        self.keeper.start()
        self.clock.advance(1)
        self.clock.advance(1)
        self.assertEqual(self.stepped_down(), [])
        self.assertEqual(self.conn.closed, 0)     # the connection is fine
        self.clock.advance(1)                     # 103 >= 100 + 3 - 0.5
        self.assertEqual(self.stepped_down(),
                         [('step_down', 1, "its lease was not renewed in time")])

    def test_a_busy_row_means_another_router_is_at_work(self):
        self.answer(lease_sql.acquire, Busy())
        self.keeper.start()
        self.assertTrue(self.keeper.leader_alive())
        self.assertEqual(self.said, [])

    def test_a_failed_renewal_steps_down_and_the_next_try_comes(self):
        self.answer(lease_sql.acquire, lease_sql.Grant(1, 3.0), None)
        self.answer(lease_sql.renew, Away("no answer within 3s: aborted"))
        self.keeper.start()
        self.clock.advance(1)
        self.assertEqual(self.stepped_down()[0][:2], ('step_down', 1))
        self.assertIn('no answer within 3s', self.stepped_down()[0][2])
        self.assertEqual(self.conn.closed, 1)     # a new one next time
        self.clock.advance(1)
        self.assertEqual([c for c, _ in self.db.calls], ['acquire', 'renew', 'acquire'])

    def test_a_hung_renewal_steps_down_in_time_and_the_tries_resume_once_it_ends(self):
        hung = defer.Deferred()
        self.answer(lease_sql.acquire, lease_sql.Grant(1, 3.0), None)
        self.answer(lease_sql.renew, hung)
        self.keeper.start()
        for _ in range(3):
            self.clock.advance(1)
        self.assertEqual(self.stepped_down(),
                         [('step_down', 1, "its lease was not renewed in time")])
        self.assertEqual(len(self.db.calls), 2)   # no second call while one hangs
        hung.errback(Away("no answer within 3s: aborted"))   # the watchdog's doing
        self.clock.advance(1)
        self.assertEqual([c for c, _ in self.db.calls], ['acquire', 'renew', 'acquire'])
