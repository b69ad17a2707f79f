"""The journal's PostgreSQL fails over to its replica (issue 22).

Two routers reach a primary and its streaming replica, made for the test
(``support/pgpair.py``), by libpq's multi-host URL with
``target_session_attrs=read-write``; three masters in processes of their
own produce 300 messages/s each. Replication is held back for about 1.5 s
(the replica falls behind by about 1,300 messages), the primary is lost
(``stop -m immediate``) before the replica gets the rest, and the replica
is promoted: the routers find it, one leads, and continues from the
replica's head, so the masters' tail beyond it is rewritten.

Every master ends with the journal's history, every position once, in
order (the same on all), has dropped nothing of the new history, and logs
the rewritten tail once. With a synchronous standby nothing acknowledged
is lost and no tail is rewritten.

Before issue 22 (a TCP proxy as the routers' one address, moved to the
replica at promotion, as the routers refused a multi-host URL), the masters
dropped the new history's first positions as "already delivered" and ended
apart: ``through_one_moving_address`` measures that set-up."""

from twisted.internet import defer
from twisted.internet import threads
from twisted.trial import unittest

from tests.support.figures import report
from tests.support.ha import RouterSet
from tests.support.pgpair import PgPair
from tests.support.tailrun import MastersOverRewrite
from tests.support.tailrun import entries_pg
from tests.support.tcpproxy import CuttableProxy

PER_MASTER = 2700     # 9 s of production: the take-over (about 5 s) falls inside
RATE = 300            # per master, messages/s
START_AFTER = 600     # messages every master delivered before the fault
HELD_BACK = 1.5       # seconds of replication the replica misses
# what a master's rewritten-tail error says (master/lineage.py)
TAIL_ERROR = 'was rewritten from position'


class JournalFailsOver(RouterSet, unittest.TestCase):
    timeout = 240

    @defer.inlineCallbacks
    def fail_over(self, name, synchronous=False, one_address=False):
        pair = PgPair(self, synchronous=synchronous)
        yield threads.deferToThread(pair.start)
        address = None
        if one_address:
            address = CuttableProxy(pair.primary_port)
            self.addCleanup(address.close)
            journal = pair.url(address.port)
        else:
            journal = pair.failover_url()
        routers = yield threads.deferToThread(self.routers, journal, journal)
        yield self.leader_of(routers)
        run = MastersOverRewrite(self, [r.url for r in routers],
                                 entries_pg(pair.url(pair.replica_port)), PER_MASTER, RATE)
        heads = {}

        def lose_primary():
            heads['primary'] = pair.head(pair.primary_port)
            pair.lose_primary()

        def promote():
            # the link is cut: what the replica has now is what it keeps
            heads['replica'] = pair.head(pair.replica_port)
            pair.promote()
            if address is not None:
                address.move_to(pair.replica_port)
        steps = [(0, 'hold back', pair.hold_back)] if not synchronous else []
        steps += [(HELD_BACK, 'lose primary', lose_primary), (0, 'promote', promote)]
        yield run.run(START_AFTER, steps)
        figures, problems = run.outcome(TAIL_ERROR)
        figures['replica_head'] = heads['replica']
        report(name, behind=heads['primary'] - heads['replica'], phases=run.phases, **figures)
        self.assertEqual(run.late, [], "the fault came after production: run longer")
        return figures, problems

    def assert_reconciled(self, figures, problems):
        """Every master holds the new history from the rewrite point (the
        replica's head + 1) on, and said so once."""
        self.assertEqual(problems, [])
        self.assertTrue(figures['same_everywhere'])
        self.assertEqual(figures['rewrite_point'], figures['replica_head'] + 1)
        self.assertEqual(figures['tail_errors'], {m: 1 for m in figures['delivered']})

    @defer.inlineCallbacks
    def test_asynchronous_replica_promoted_behind(self):
        self.assert_reconciled(*(yield self.fail_over('journal-failover-async')))

    @defer.inlineCallbacks
    def test_synchronous_standby_promoted(self):
        figures, problems = yield self.fail_over('journal-failover-sync', synchronous=True)
        self.assertEqual(problems, [])
        self.assertTrue(figures['same_everywhere'])
        self.assertEqual((figures['lost'], figures['acknowledged_lost']), (0, 0))
        self.assertIsNone(figures['rewrite_point'])
        self.assertEqual(figures['tail_errors'], {m: 0 for m in figures['delivered']})

    @defer.inlineCallbacks
    def test_through_one_moving_address(self):
        """The routers reach the database through one address (a virtual IP,
        pgbouncer) that moves to the replica when it is promoted."""
        self.assert_reconciled(*(yield self.fail_over('journal-failover-one-address',
                                                      one_address=True)))
