"""Seeing the cluster against a real router (``--metrics-port``) with masters
in separate processes (load nodes): the ``status`` command, ``/metrics`` and
``/healthz``. A master paused with SIGSTOP shows a lag and goes stale, and
``status`` exits non-zero, until SIGCONT; the metrics equal what the masters
delivered."""

import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time

from twisted.trial import unittest

from buildbot_mq_ordered.load.nodes import NodeProcess
from buildbot_mq_ordered.load.nodes import drive
from buildbot_mq_ordered.load.processes import Router
from buildbot_mq_ordered.load.processes import free_port
from tests.support.util import http_get

MASTERS = 3
PER_MASTER = 200
LATER = 150          # produced by a late master while one is paused
DEADLINE = 60        # seconds for any one awaited state


def status(url, *args, timeout=30):
    """(exit code, stdout, stderr) of `buildbot-mq-ordered status`."""
    proc = subprocess.run([sys.executable, '-m', 'buildbot_mq_ordered.cli', 'status',
                           '--router', url, *args], stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, timeout=timeout)
    return proc.returncode, proc.stdout.decode(), proc.stderr.decode()


def samples(text):
    """{'name{labels}': value} of a Prometheus text exposition."""
    out = {}
    for line in text.splitlines():
        m = re.match(r'^([a-z_]+(?:\{[^}]*\})?) (\S+)$', line)
        if m:
            out[m.group(1)] = float(m.group(2))
    return out


class ClusterObserved(unittest.TestCase):
    timeout = 240

    @classmethod
    def setUpClass(cls):
        cls.metrics_port = free_port()
        cls.router = Router(extra_args=['--metrics-port', str(cls.metrics_port)]).start()
        cls.metrics = f'http://127.0.0.1:{cls.metrics_port}'
        cls.tmp = tempfile.mkdtemp(prefix='bmo-observe-')
        cls.nodes = []

    @classmethod
    def tearDownClass(cls):
        for n in cls.nodes:
            n.stop(signal.SIGKILL)
        cls.router.cleanup()

    def node(self, name, messages):
        # never done (expect more than will come): it stays joined, idle
        n = NodeProcess(self.router.url, name, os.path.join(self.tmp, name + '.json'),
                        messages=messages, expect=10 ** 9, shared_keys=3, timeout=200)
        self.nodes.append(n)
        return n

    def wait(self, what, check, deadline=DEADLINE):
        """Poll check() (it returns a truthy value when done) while reading
        the nodes' output; fail naming what, with the last value seen."""
        end = time.monotonic() + deadline
        seen = [None]

        def done():
            seen[0] = check()
            return bool(seen[0])
        while not done():
            if time.monotonic() > end:
                self.fail(f"timed out waiting for {what}; last: {seen[0]!r}")
            drive(self.nodes, lambda: False, min(end, time.monotonic() + 0.3))
        return seen[0]

    def status_json(self, *args):
        code, out, err = status(self.router.url, '--json', *args)
        self.assertIn(code, (0, 1), err)
        return code, json.loads(out)

    def rows(self, s):
        return {m['master']: m for m in s['masters']}

    def test_paused_master_lags_and_goes_stale_then_catches_up(self):
        # a router without masters is healthy; no master reported yet
        code, out, err = status(self.router.url)
        self.assertEqual(code, 0, out + err)
        self.assertIn('no master has reported', out)
        self.assertEqual(http_get(self.metrics + '/healthz'), (200, 'ok\n'))

        masters = [self.node(f'm{i}', PER_MASTER) for i in range(MASTERS)]
        drive(masters, lambda: all(n.ready for n in masters), time.monotonic() + DEADLINE)
        for n in masters:
            n.go()
        total = MASTERS * PER_MASTER

        def all_at(head, names):
            code, s = self.status_json('--max-lag', '0')
            rows = self.rows(s)
            ok = code == 0 and s['head'] == head and set(rows) == set(names) and all(
                m['delivered_pos'] == head and m['lag'] == 0 for m in rows.values())
            return ok and s
        s = self.wait(f"every master at {total}", lambda: all_at(total, ['m0', 'm1', 'm2']))
        self.assertEqual(s['sequenced_total'], total)
        self.assertEqual(s['sequencer'], 'leading')

        # /metrics: what the masters delivered (each delivered every position
        # from 1: joined before anything was produced)
        self.wait("the nodes' own delivered counts",
                  lambda: all(n.progress[0] == total for n in masters))
        m = samples(http_get(self.metrics + '/metrics')[1])
        self.assertEqual(m['buildbot_mq_ordered_stream_head'], total)
        self.assertEqual(m['buildbot_mq_ordered_submitted_messages_total'], total)
        self.assertEqual(m['buildbot_mq_ordered_leader'], 1)
        for n in masters:
            label = f'{{master="{n.name}"}}'
            self.assertEqual(m['buildbot_mq_ordered_master_delivered_position' + label],
                             n.progress[0])
            self.assertEqual(m['buildbot_mq_ordered_master_lag' + label], 0)
            self.assertEqual(m['buildbot_mq_ordered_master_skipped_messages_total' + label], 0)

        # m1 paused; a late master produces meanwhile
        paused = masters[1]
        os.kill(paused.proc.pid, signal.SIGSTOP)
        try:
            late = self.node('late', LATER)
            drive([late], lambda: late.ready, time.monotonic() + DEADLINE)
            late.go()
            head = total + LATER

            def m1_lags():
                code, s = self.status_json('--max-lag', '10')
                m1 = self.rows(s).get('m1')
                return (code == 1 and s['head'] == head and m1 and m1['stale'] and
                        m1['lag'] == LATER and s)
            s = self.wait("m1 lagging and stale", m1_lags)
            self.assertIn(f"master m1 lags {LATER} positions (more than 10)", s['problems'])
            self.assertIn("master m1 is stale", ' '.join(s['problems']))
            self.assertEqual(self.rows(s)['m0']['lag'], 0)
            code, out, err = status(self.router.url, '--max-lag', '10')
            self.assertEqual(code, 1)
            self.assertIn(f"unhealthy: master m1 lags {LATER} positions", out)
            m = samples(http_get(self.metrics + '/metrics')[1])
            self.assertEqual(m['buildbot_mq_ordered_master_lag{master="m1"}'], LATER)
            self.assertEqual(m['buildbot_mq_ordered_master_stale{master="m1"}'], 1)
            # the router itself is fine: its sequencer leads
            self.assertEqual(http_get(self.metrics + '/healthz'), (200, 'ok\n'))
        finally:
            os.kill(paused.proc.pid, signal.SIGCONT)

        self.wait("every master caught up after SIGCONT",
                  lambda: all_at(head, ['m0', 'm1', 'm2', 'late']))
        code, out, err = status(self.router.url, '--max-lag', '0')
        self.assertEqual(code, 0, out + err)
        self.assertTrue(out.rstrip().endswith('healthy'), out)
        self.wait("m1's own count", lambda: paused.progress[0] == head)
        m = samples(http_get(self.metrics + '/metrics')[1])
        self.assertEqual(m['buildbot_mq_ordered_master_delivered_position{master="m1"}'],
                         paused.progress[0])
        self.assertEqual(m['buildbot_mq_ordered_master_lag{master="m1"}'], 0)

    def test_usage_and_unreachable(self):
        code, out, err = status('http://127.0.0.1:1/ws')
        self.assertEqual(code, 2)
        self.assertIn("--router must be a ws:// or wss:// URL", err)
        code, out, err = status(f'ws://127.0.0.1:{free_port()}/ws', '--timeout', '2')
        self.assertEqual(code, 3)
        self.assertIn("no answer from", err)
        # several routers: one not running is passed over
        code, out, err = status(f'ws://127.0.0.1:{free_port()}/ws', '--router',
                                self.router.url, '--json')
        self.assertEqual(code, 0, err)
        self.assertEqual(json.loads(out)['sequencer'], 'leading')
