"""Masters follow the leader: two routers on one PostgreSQL journal, three
masters in their own processes listing both routers; the leader's router is
killed with SIGKILL mid-stream and its node directory deleted. Every master
ends with every message exactly once, in one identical order. And a standby
router is healthy (``/healthz``) while it sees a live leader."""

import os
import shutil
import tempfile
import time

from twisted.internet import defer
from twisted.internet import threads
from twisted.trial import unittest

from buildbot_mq_ordered import wire
from buildbot_mq_ordered.load.nodes import NodeProcess
from buildbot_mq_ordered.load.nodes import run_nodes
from buildbot_mq_ordered.load.processes import Router
from buildbot_mq_ordered.load.processes import free_port
from tests.support.figures import report
from tests.support.ha import RouterSet
from tests.support.ha import call
from tests.support.ha import poll
from tests.support.pgutil import fresh_database
from tests.support.pgutil import journal_rows
from tests.support.util import assert_delivered_once_in_one_order
from tests.support.util import http_get

MASTERS = 3
# production lasts 4 s; the leader dies about 1 s in, so messages are in
# flight and produced during the take-over (3-4 s)
PER_MASTER = 1200          # 3,600 messages in all
RATE = 300                 # per master, messages/s
KILL_AFTER = 900           # messages every master delivered


class MastersFollowTheLeader(RouterSet, unittest.TestCase):
    timeout = 400

    @defer.inlineCallbacks
    def test_leader_killed_mid_stream_every_message_once_in_one_order(self):
        url = fresh_database(self)
        routers = self.routers(url, url)
        leader, info = yield self.leader_of(routers)
        tmp = tempfile.mkdtemp(prefix='bmo-failover-')
        self.addCleanup(shutil.rmtree, tmp, True)
        urls = [r.url for r in routers]
        nodes = [NodeProcess(urls, f'm{i}', os.path.join(tmp, f'm{i}.json'),
                             messages=PER_MASTER, expect=MASTERS * PER_MASTER,
                             rate=RATE, shared_keys=7, timeout=300)
                 for i in range(MASTERS)]
        t = {}

        def fault():
            delivered = min(n.progress[0] for n in nodes)
            if 'kill' not in t and delivered >= KILL_AFTER:
                leader.kill()
                t['kill'] = time.time()
                shutil.rmtree(leader.cbdir, ignore_errors=True)
                t['head_at_kill'] = journal_rows(url, "SELECT max(pos) FROM entries")[0][0]

        def run():
            try:
                return run_nodes(nodes, timeout=360, on_tick=fault)
            finally:
                for n in nodes:
                    n.stop()
        results = yield threads.deferToThread(run)
        self.assertIn('kill', t, "the leader was never killed")
        verdict = assert_delivered_once_in_one_order(self, nodes, results, PER_MASTER)
        (first_new,), = journal_rows(
            url, f"SELECT ts FROM entries WHERE pos = {t['head_at_kill'] + 1}")
        failover = first_new - t['kill']
        print(f"\nfailover (SIGKILL of the leader's router -> first message sequenced "
              f"by the new leader): {failover:.1f} s")
        report('leader-router-sigkill', messages=MASTERS * PER_MASTER,
               failover_s=round(failover, 2), head_at_kill=t['head_at_kill'],
               problems=len(verdict.problems))
        self.assertEqual(len(self.assert_journal_whole(url)), MASTERS * PER_MASTER)
        self.assertGreater(failover, 0)


class StandbyHealth(RouterSet, unittest.TestCase):
    """``/healthz`` of a standby router: 200 while it sees a live leader
    (its sequencer's ``role``), and the standby answers no ``info``."""
    timeout = 120

    @defer.inlineCallbacks
    def test_a_standby_with_a_live_leader_is_healthy(self):
        url = fresh_database(self)
        ports = [free_port(), free_port()]
        routers = [Router(extra_args=['--journal', url, '--metrics-port', str(p)])
                   for p in ports]
        for r in routers:
            self.addCleanup(r.cleanup)
        Router.start_together(routers)
        leader, _ = yield self.leader_of(routers)
        standby = [r for r in routers if r is not leader][0]
        role = yield call(standby, wire.ROLE)
        self.assertEqual(role[0], 'ok', role)
        self.assertEqual((role[1]['leader'], role[1]['leader_alive']), (False, True))
        healthz = f'http://127.0.0.1:{ports[routers.index(standby)]}/healthz'

        @defer.inlineCallbacks
        def healthy():
            answer = yield threads.deferToThread(http_get, healthz)
            return answer == (200, 'ok\n')
        yield poll(healthy, 20, "the standby's /healthz to say ok")
