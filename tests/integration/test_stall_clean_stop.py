"""A clean stop of the leader under load (issue 21): two routers on one
PostgreSQL journal, three masters producing; the leader's router command
gets SIGTERM. Its log holds no traceback (a commit finishing after the
sequencer left used to raise ``AttributeError: 'NoneType' object has no
attribute 'stream_id'``), the standby leads at its next try (the lease is
released, not run out), nothing is lost or delivered twice, one order."""

import signal

from twisted.internet import defer
from twisted.internet import threads
from twisted.trial import unittest

from buildbot_mq_ordered.router.leadership import RENEW_EVERY
from tests.support import routerlog
from tests.support.pgutil import fresh_database
from tests.support.takeover import LeaderFault

RATE, PER_MASTER = 100, 600       # 6 s: about 2 s before the stop, 4 s after
# released: the standby's next try (every RENEW_EVERY) takes it
RELEASED_BOUND = RENEW_EVERY + 2


class LeaderStopsCleanly(LeaderFault, unittest.TestCase):
    timeout = 240

    @defer.inlineCallbacks
    def test_leader_stopped_under_load_no_traceback_and_the_standby_leads(self):
        url = fresh_database(self)
        routers = self.routers(url, url)
        leader, _ = yield self.leader_of(routers)
        figures, promises = yield self.fault_under_load(
            url, routers, leader,
            [(0, 'fault', lambda: leader.proc.send_signal(signal.SIGTERM))],
            PER_MASTER, RATE)
        yield threads.deferToThread(leader.stop)     # every process of it gone
        promises.within("clean stop -> the standby leads", figures['takeover_s'],
                        RELEASED_BOUND)
        lines = routerlog.tracebacks(leader)
        promises.check(not lines, f"the stopped leader's log ({leader.log_path}) has "
                                  f"{len(lines)} traceback lines: " + " | ".join(lines))
        figures['exit_status'] = leader.proc.returncode
        standby = next(r for r in routers if r is not leader)
        figures['tracebacks'] = {'leader': len(lines),
                                 'standby': len(routerlog.tracebacks(standby))}
        self.conclude('stall-leader-clean-stop', figures, promises, routers)
