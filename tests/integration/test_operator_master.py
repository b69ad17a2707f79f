"""Real ``buildbot`` masters (separate processes, ``buildbot start`` /
``stop`` / ``checkconfig``) and real routers: what the operator reads in
twistd.log and on the console when the router is not there, refuses the
master, or the mq type is misspelt - and that nothing logs a traceback."""

import os
import shutil
import subprocess
import tempfile

from twisted.trial import unittest

from buildbot_mq_ordered.load.processes import Router
from buildbot_mq_ordered.load.processes import free_port
from tests.support.operator import BUILDBOT
from tests.support.operator import COMMAND_TIMEOUT
from tests.support.operator import MasterDir
from tests.support.operator import read
from tests.support.operator import run


class Master(unittest.TestCase):
    timeout = 300

    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix='bmo-op-master-')
        self.addCleanup(shutil.rmtree, self.tmp, True)

    def router(self, name, **kw):
        router = Router(cbdir=os.path.join(self.tmp, name), **kw)
        self.addCleanup(router.stop)
        return router

    def assertNoTraceback(self, *paths):
        for path in paths:
            text = read(path)
            at = text.find('Traceback')
            self.assertEqual(at, -1, f"{path}:\n{text[max(0, at - 2000):at + 4000]}")

    def start_joined(self, extra=''):
        router = self.router('router')
        router.start()
        m = MasterDir(self, self.tmp, url=router.url, extra=extra)
        rc, out = run([BUILDBOT, 'start', '--start_timeout', '60', m.basedir])
        self.assertEqual(rc, 0, out + read(m.log))
        log = m.wait_log('BuildMaster is running')
        self.assertIn(f"ordered-wamp: joined realm 'buildbot' at {router.url}", log)
        return router, m

    def test_healthy_master_and_router_log_no_traceback(self):
        router, m = self.start_joined()
        m.stop()
        router.stop()
        # nothing filtered out: bjdata's NumPy notice would be a Traceback too
        self.assertNoTraceback(m.log, router.log_path, router.console_path)
        self.assertNotIn('NumPy', read(m.log) + read(router.log_path))

    def test_refused_after_joining_says_why_once_and_stops(self):
        # Buildbot produces a few messages while it stops; unacknowledged,
        # stopService waits shutdown_timeout for them (mq.py), and `buildbot
        # stop` gives up watching after 10s: keep that wait short here
        router, m = self.start_joined(extra=", 'shutdown_timeout': 2")
        # the same port, now a router of another realm: the master is refused
        router.stop()
        other = self.router('other', realm='elsewhere', port=router.port)
        other.start()
        log = m.wait_log('refused to let')
        refusals = [line for line in log.splitlines() if 'refused to let' in line]
        self.assertEqual(len(refusals), 1, log)
        self.assertIn(f"ordered-wamp: the router at {router.url} refused to let this "
                      "master join realm 'buildbot' anonymously: wamp.error.no_such_realm: "
                      "no realm \"buildbot\" exists on this router. Fix: check "
                      "c['mq']['realm'] against the router's --realm (default "
                      "'buildbot'). Retrying with backoff.", refusals[0])
        # a lost session is one line, not a "waiting" line about transport_lost
        self.assertNotIn('transport_lost', log.replace(
            'left the router (wamp.close.transport_lost)', ''))
        self.assertNoTraceback(m.log)
        m.stop()
        other.stop()
        self.assertNoTraceback(other.log_path, other.console_path)

    def test_start_waits_for_the_router_and_says_so(self):
        port = free_port()
        url = f'ws://127.0.0.1:{port}/ws'
        m = MasterDir(self, self.tmp, url=url)
        start = subprocess.Popen([BUILDBOT, 'start', '--start_timeout', '120', m.basedir],
                                 stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        try:
            log = m.wait_log('waiting for the router')
            self.assertIn(f"ordered-wamp: waiting for the router at {url}, realm "
                          "'buildbot' (Connection was refused by other side: 111: "
                          "Connection refused); retrying with backoff. Buildbot's "
                          "start-up waits until the master has joined.", log)
            self.assertNotIn('Connection failed', log)   # autobahn's bare line
            self.assertNotIn('BuildMaster is running', log)
            router = self.router('router', port=port)
            router.start()
            out = start.communicate(timeout=COMMAND_TIMEOUT)[0].decode()
        finally:
            if start.poll() is None:
                start.kill()
                start.wait()
        self.assertEqual(start.returncode, 0, out)
        log = m.wait_log('BuildMaster is running')
        self.assertRegex(log, rf"ordered-wamp: joined realm 'buildbot' at {url} "
                              r"after waiting \d+s")
        m.stop()
        self.assertNoTraceback(m.log)


class CheckConfig(unittest.TestCase):
    """The mq type: Buildbot's config loader, through `buildbot checkconfig`."""

    timeout = 180

    def checkconfig(self, **cfg):
        tmp = tempfile.mkdtemp(prefix='bmo-op-cfg-')
        self.addCleanup(shutil.rmtree, tmp, True)
        m = MasterDir(self, tmp, **cfg)
        return run([BUILDBOT, 'checkconfig', m.basedir])

    def test_near_misses_get_a_suggestion(self):
        for typ in ('ordered_wamp', 'orderedwamp', 'Ordered-WAMP'):
            rc, out = self.checkconfig(mq_type=typ)
            self.assertNotEqual(rc, 0, out)
            self.assertIn(f"mq type '{typ}' is not known; did you mean 'ordered-wamp'?", out)

    def test_other_types_keep_buildbots_message(self):
        rc, out = self.checkconfig(mq_type='rabbit')
        self.assertNotEqual(rc, 0, out)
        self.assertIn("mq type 'rabbit' is not known", out)
        self.assertNotIn('did you mean', out)

    def test_forgotten_import_is_buildbots_bare_message(self):
        # without the import nothing of this package runs during the config
        # load (Buildbot has no hook for MQ types): docs/cluster.rst and
        # docs/failure-modes.rst name this message and the missing line
        rc, out = self.checkconfig(import_line='')
        self.assertNotEqual(rc, 0, out)
        self.assertIn("mq type 'ordered-wamp' is not known", out)

    def test_the_right_type_is_good(self):
        rc, out = self.checkconfig()
        self.assertEqual(rc, 0, out)
        self.assertIn('Config file is good!', out)
