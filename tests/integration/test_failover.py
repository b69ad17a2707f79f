"""Routers sharing one PostgreSQL journal, for real: the project's router
command, a real PostgreSQL (``bash tests/services.sh``), plain WAMP clients.

Exactly one router leads (only it has the sequencer's procedures); when it
dies or loses the database another one leads, with a larger term, and
continues the same positions and per-key numbers; PostgreSQL restarted
mid-stream loses nothing acknowledged.
"""

import os
import signal
import subprocess
import time
from urllib.parse import urlsplit

from autobahn.twisted.component import Component
from autobahn.wamp.exception import ApplicationError
from twisted.internet import defer
from twisted.internet import reactor
from twisted.internet import task
from twisted.internet import threads
from twisted.trial import unittest

from buildbot_mq_ordered import wire
from buildbot_mq_ordered.router.leadership import LEASE_SECONDS
from buildbot_mq_ordered.router.leadership import RENEW_EVERY
from tests.support.ha import FAILOVER_BOUND
from tests.support.ha import RouterSet
from tests.support.ha import call
from tests.support.ha import poll
from tests.support.pgutil import PG_URL
from tests.support.pgutil import admin
from tests.support.pgutil import fresh_database
from tests.support.pgutil import journal_rows
from tests.support.tcpproxy import CuttableProxy
from tests.support.util import batched_timers_fired

PG_RESTART_TIMEOUT = 60


class Failover(RouterSet, unittest.TestCase):
    timeout = 180

    @defer.inlineCallbacks
    def submit(self, router, producer, messages):
        answer = yield call(router, wire.SUBMIT, producer, messages)
        self.assertEqual(answer[0], 'ok', answer)
        return answer[1]

    @defer.inlineCallbacks
    def two_routers(self):
        """(URL, routers, leader, standby, leader's info): two routers on a
        new database."""
        url = fresh_database(self)
        routers = self.routers(url, url)
        leader, info = yield self.leader_of(routers)
        standby = [r for r in routers if r is not leader][0]
        return url, routers, leader, standby, info

    @defer.inlineCallbacks
    def test_leader_killed_the_other_leads_and_continues_the_positions(self):
        url, routers, leader, standby, info = yield self.two_routers()
        ack = yield self.submit(leader, 'prod-a', [[i, ['k'], b'%d' % i] for i in range(1, 6)])
        self.assertEqual(ack, [5, 5, 0])
        self.assertEqual(info['head'], 0)
        leader.kill()
        killed = time.monotonic()
        _, info2 = yield self.leader_of([standby])
        failover = time.monotonic() - killed
        print(f"\nfailover after SIGKILL of the leader: {failover:.1f} s")
        self.assertLess(failover, FAILOVER_BOUND)
        self.assertGreater(info2['term'], info['term'])
        self.assertEqual((info2['head'], info2['stream_id']), (5, info['stream_id']))
        # a take-over begins a term of its own, at the head + 1
        self.assertEqual(info2['terms'], [[info['term_id'], 1], [info2['term_id'], 6]])
        self.assertEqual((yield self.submit(standby, 'prod-b', [[1, ['k'], b'6']])), [1, 6, 0])
        rows = self.assert_journal_whole(url)
        self.assertEqual(rows[-1], (6, 6, '["k"]'))
        self.assert_password_kept(standby, url)

    @defer.inlineCallbacks
    def test_leader_stopped_cleanly_hands_over_at_once(self):
        url, routers, leader, standby, info = yield self.two_routers()
        leader.stop()
        stopped = time.monotonic()
        _, info2 = yield self.leader_of([standby])
        print(f"\nfailover after a clean stop of the leader: "
              f"{time.monotonic() - stopped:.1f} s")
        # released, not run out: the standby's next try takes it
        self.assertLess(time.monotonic() - stopped, RENEW_EVERY + 2)
        self.assertGreater(info2['term'], info['term'])

    def assert_password_kept(self, router, url):
        """The URL's password is in no file the router command wrote."""
        password = urlsplit(url).password
        self.assertTrue(password)
        for path in (router.console_path, router.log_path,
                     os.path.join(router.cbdir, 'config.json')):
            with open(path) as f:
                text = f.read()
            self.assertNotIn(f':{password}@', text, path)
        with open(router.console_path) as f:
            self.assertIn(':***@', f.read())

    @defer.inlineCallbacks
    def test_leader_frozen_is_replaced_and_cannot_commit_when_it_wakes(self):
        # SIGSTOP: a hung host - its connections stay open, nothing answers
        url, routers, leader, standby, info = yield self.two_routers()
        yield self.submit(leader, 'prod-a', [[1, ['k'], b'1']])
        os.killpg(leader.proc.pid, signal.SIGSTOP)
        self.addCleanup(os.killpg, leader.proc.pid, signal.SIGCONT)
        frozen = time.monotonic()
        _, info2 = yield self.leader_of([standby])
        print(f"\nfailover after SIGSTOP of the leader: {time.monotonic() - frozen:.1f} s")
        self.assertLess(time.monotonic() - frozen, FAILOVER_BOUND)
        self.assertGreater(info2['term'], info['term'])
        os.killpg(leader.proc.pid, signal.SIGCONT)
        # woken, whatever it still believes, it commits nothing
        answer = yield call(leader, wire.SUBMIT, 'prod-a', [[2, ['k'], b'2']])
        self.assertEqual(answer[0], 'error', answer)
        self.assertEqual((yield self.submit(standby, 'prod-a', [[2, ['k'], b'2']])), [2, 2, 1])
        leader2, _ = yield self.leader_of(routers)
        self.assertIs(leader2, standby)
        self.assertEqual(len(self.assert_journal_whole(url)), 2)

    @defer.inlineCallbacks
    def test_leader_cut_off_from_postgresql_stops_and_the_other_takes_over(self):
        url = fresh_database(self)
        host_port = PG_URL.split('@', 1)[1].split('/', 1)[0]
        proxy = CuttableProxy(int(host_port.rsplit(':', 1)[1]))
        self.addCleanup(proxy.close)
        proxied = url.replace(f'@{host_port}/', f'@127.0.0.1:{proxy.port}/')
        first, = self.routers(proxied)
        _, info = yield self.leader_of([first])      # the proxied one leads
        second, = self.routers(url)
        leader, info = yield self.leader_of([first, second])
        self.assertIs(leader, first)
        yield self.submit(first, 'prod-a', [[i, ['k'], b'a'] for i in range(1, 4)])
        proxy.cut()
        cut = time.monotonic()

        @defer.inlineCallbacks
        def first_stopped():
            answer = yield call(first, wire.INFO, **wire.handshake())
            return answer[0] == 'error'
        yield poll(first_stopped, LEASE_SECONDS + 2, "the cut-off leader stops leading")
        stopped = time.monotonic() - cut
        self.assertEqual((yield call(first, wire.SUBMIT, 'prod-a', [[4, ['k'], b'a']]))[0],
                         'error')
        _, info2 = yield self.leader_of([second])
        print(f"\ncut-off leader stopped after {stopped:.1f} s, the other leads after "
              f"{time.monotonic() - cut:.1f} s")
        self.assertGreater(info2['term'], info['term'])
        self.assertEqual(info2['head'], 3)
        self.assertEqual((yield self.submit(second, 'prod-a', [[4, ['k'], b'a']])), [4, 4, 3])
        # back on the network: a candidate, and the lead stays where it is
        proxy.restore()
        leader, info3 = yield self.leader_of([first, second])
        self.assertIs(leader, second)
        self.assertEqual(info3['term'], info2['term'])
        self.assertEqual(len(self.assert_journal_whole(url)), 4)

    @defer.inlineCallbacks
    def test_postgresql_restarted_mid_stream_loses_nothing_acknowledged(self):
        url = fresh_database(self)
        router, = self.routers(url)
        yield self.leader_of([router])
        acked = {}      # producer seq -> position
        restarted = []

        @defer.inlineCallbacks
        def produce(reactor_, session):
            i = 1
            deadline = time.monotonic() + PG_RESTART_TIMEOUT
            while i <= 40 or not restarted or len(acked) < 40 + 20:
                if time.monotonic() > deadline:
                    raise AssertionError(f"{len(acked)} acknowledged, restarted: {restarted}")
                try:
                    ack = yield session.call(wire.SUBMIT, 'prod', [[i, ['k'], b'%d' % i]])
                except ApplicationError:
                    # a retry delay, as a master's backoff (not a wait for
                    # an event: the server is restarting)
                    yield task.deferLater(reactor, 0.1, lambda: None)
                    continue     # the same message again, as a master does
                if ack[1] is not None:
                    acked[i] = ack[1]
                i += 1
                if i == 20:
                    threads.deferToThread(restart_postgresql).addCallback(restarted.append)

        comp = Component(transports=[{'url': router.url, 'serializers': ['msgpack'],
                                      'max_retries': 0}], realm=router.realm, main=produce)
        self.addCleanup(ensure_postgresql)
        yield comp.start(reactor)
        # its calls' timers: pending after it left, trial's reactor would be unclean
        yield batched_timers_fired()
        self.assertEqual(restarted, [0])
        rows = journal_rows(url, "SELECT pos, data FROM entries ORDER BY pos")
        journal = {bytes(d): p for p, d in rows}
        self.assertEqual(len(journal), len(rows))     # each message once
        # every acknowledged one where it was acknowledged (one committed
        # by a leader that stepped down before answering is there too:
        # its retry was found sequenced)
        self.assertEqual({b'%d' % i: journal.get(b'%d' % i) for i in acked},
                         {b'%d' % i: p for i, p in acked.items()})
        self.assertEqual(sorted(int(d) for d in journal), list(range(1, len(rows) + 1)))
        self.assert_journal_whole(url)


def cluster():
    """(version, name) of the PostgreSQL cluster on the tests' port."""
    port = PG_URL.rsplit(':', 1)[1].split('/')[0]
    for line in subprocess.run(['pg_lsclusters', '-h'], capture_output=True, text=True,
                               check=True).stdout.splitlines():
        version, name, cport = line.split()[:3]
        if cport == port:
            return version, name
    raise AssertionError(f"no PostgreSQL cluster on port {port}")


def restart_postgresql():
    version, name = cluster()
    return subprocess.run(['pg_ctlcluster', version, name, 'restart'],
                          timeout=PG_RESTART_TIMEOUT).returncode


def ensure_postgresql():
    """Leave PostgreSQL running whatever happened (services.sh starts it)."""
    subprocess.run(['bash', 'tests/services.sh'], timeout=PG_RESTART_TIMEOUT,
                   capture_output=True)
    admin().close()
