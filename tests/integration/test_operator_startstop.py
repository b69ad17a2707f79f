"""`buildbot stop` of a real master whose start-up still waits for its router
(refused, or no router at all): it stops promptly, saying why, with no
traceback in its log."""

import os
import shutil
import subprocess
import tempfile

from twisted.trial import unittest

from buildbot_mq_ordered.load.processes import Router
from buildbot_mq_ordered.load.processes import free_port
from tests.support.operator import BUILDBOT
from tests.support.operator import MasterDir
from tests.support.operator import read


class StopDuringStart(unittest.TestCase):
    timeout = 300

    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix='bmo-op-ss-')
        self.addCleanup(shutil.rmtree, self.tmp, True)

    def check(self, url, wait_for):
        m = MasterDir(self, self.tmp, url=url, realm='Buildbot')
        start = subprocess.Popen([BUILDBOT, 'start', '--start_timeout', '120', m.basedir],
                                 stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        self.addCleanup(lambda: start.poll() is None and start.kill())
        m.wait_log(wait_for)
        m.stop()   # returns 0, process gone, within STOP_TIMEOUT
        start.communicate(timeout=60)
        log = read(m.log)
        # Buildbot's start-up is let finish without the router (a failed
        # start-up would be a traceback), then the master stops at once
        self.assertIn("stopping before this master ever joined realm 'Buildbot'", log)
        self.assertIn('nothing was delivered', log)
        self.assertIn('Server Shut Down.', log)
        self.assertNotIn('Traceback', log)
        self.assertNotIn('Unhandled Error', log)

    def test_refused_at_start(self):
        router = Router(cbdir=os.path.join(self.tmp, 'router'))
        self.addCleanup(router.stop)
        router.start()
        self.check(router.url, 'refused to let')

    def test_router_absent_at_start(self):
        self.check(f'ws://127.0.0.1:{free_port()}/ws', 'waiting for the router')
