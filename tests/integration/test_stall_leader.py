"""A stalled leader never holds the cluster (issue 21): two routers on one
PostgreSQL journal, three masters in processes of their own producing at a
steady rate, and the leader stalls for longer than its lease - its host
frozen (the router's process group SIGSTOPped), or its database link hung
(a proxy that keeps the connections open and forwards nothing). The fault
comes while the leader commits (its transaction holds the lease row:
``ha.COMMIT_MOMENTS``), the worst moment for a take-over. The other router
must lead within the lease and a margin (``ha.LEADS_BOUND``), the first
message be sequenced by it within ``ha.FIRST_SEQUENCED_BOUND`` of the fault,
nothing acknowledged be lost, nothing delivered twice, one order on every
master, no position numbered twice, and the stalled leader step down (a
deposed leader's commit fails: the journal holds each message once).

Each test prints its figures as one JSON line (``figures.report``).
Before issue 21's fixes the standby led only when the stall ended."""

from twisted.internet import defer
from twisted.trial import unittest

from buildbot_mq_ordered.router.leadership import LEASE_SECONDS
from buildbot_mq_ordered.router.leadership import RENEW_EVERY
from tests.support.ha import freeze
from tests.support.ha import thaw
from tests.support.ha import through_proxy
from tests.support.pgutil import fresh_database
from tests.support.takeover import LeaderFault

FROZEN = 8.0          # seconds the leader's host stays frozen
HUNG = 15.0           # seconds the leader's database link forwards nothing
# production spans the fault: about 2 s before it, the fault, 5 s after
FROZEN_RATE, FROZEN_PER_MASTER = 60, 900
HUNG_RATE, HUNG_PER_MASTER = 50, 1100
# woken, a frozen leader sees at its next tick that its lease ran out
WOKEN_STEPS_DOWN = RENEW_EVERY + 1
# a leader whose renewals hang stops when its lease, counted from when it
# asked, would run out, at its next tick: before anyone else can lead
HUNG_STEPS_DOWN = LEASE_SECONDS + RENEW_EVERY


class LeaderStalls(LeaderFault, unittest.TestCase):
    timeout = 300

    @defer.inlineCallbacks
    def test_leader_frozen_longer_than_its_lease_the_standby_takes_over(self):
        url = fresh_database(self)
        routers = self.routers(url, url)
        leader, _ = yield self.leader_of(routers)
        self.addCleanup(thaw, leader)
        figures, promises = yield self.stall_under_load(
            url, routers, leader, (lambda: freeze(leader), lambda: thaw(leader)), FROZEN,
            FROZEN_PER_MASTER, FROZEN_RATE)
        left = figures['leader_left_s']
        resumed = figures['steps'].get('end')
        figures['woken_left_s'] = None if None in (left, resumed) else round(left - resumed, 2)
        promises.within("resumed -> the woken leader steps down", figures['woken_left_s'],
                        WOKEN_STEPS_DOWN)
        self.conclude('stall-leader-sigstop', figures, promises, routers)

    @defer.inlineCallbacks
    def test_leader_database_link_hangs_the_standby_takes_over(self):
        url = fresh_database(self)
        proxied, proxy = through_proxy(self, url)
        first, = self.routers(proxied)
        yield self.leader_of([first])       # the proxied one leads
        second, = self.routers(url)
        routers = [first, second]
        leader, _ = yield self.leader_of(routers)
        self.assertIs(leader, first, "the proxied router lost the lead before the fault: "
                                     f"see {first.log_path} and {second.log_path}")
        figures, promises = yield self.stall_under_load(
            url, routers, first, (proxy.hang, proxy.restore), HUNG,
            HUNG_PER_MASTER, HUNG_RATE)
        left = figures['leader_left_s']
        promises.within("fault -> the hung leader steps down", left, HUNG_STEPS_DOWN)
        promises.check(figures['two_leaders'] is None,
                       f"two leaders: the hung leader said it led when asked at "
                       f"{figures['two_leaders']} s after the standby had said so")
        self.conclude('stall-leader-db-link', figures, promises, routers)
