"""The journal's disk full, on a real router: the cause is said, once, at
error level, on the router and on the master; nothing is lost once there is
room again.

Issue 10: with the journal's disk full the sequencer reported "cannot
rollback - no transaction is active" instead of the disk-full error, and
masters logged hundreds of info-level "submit failed ... retrying" lines and
not one error while the whole cluster had stopped.

The journal goes on a small tmpfs (``--journal sqlite:////PATH``), which
needs root, as CI runs; elsewhere this test fails saying so."""

import os
import subprocess
import tempfile

from twisted.internet import defer
from twisted.trial import unittest

from tests.support.router import Router
from tests.support.util import Collector
from tests.support.util import start_master
from tests.support.util import until
from tests.support.util import with_timeout

MESSAGES = 400      # of 8 KiB: 3.2 MB, more than the 2 MB disk
PAD = 'x' * 8192


def mount(*args):
    subprocess.run(['mount', *args], check=True, capture_output=True, timeout=30)


class JournalDiskFull(unittest.TestCase):
    timeout = 180

    @defer.inlineCallbacks
    def test_disk_full_is_said_once_and_nothing_is_lost(self):
        if os.geteuid() != 0:
            self.fail("this test mounts a small tmpfs for the journal: run it as root")
        disk = tempfile.mkdtemp(prefix='bmo-full-')
        mount('-t', 'tmpfs', '-o', 'size=2m', 'tmpfs', disk)
        self.addCleanup(os.rmdir, disk)
        self.addCleanup(subprocess.run, ['umount', '-l', disk], timeout=30)
        router = Router(extra_args=['--journal', f'sqlite:///{disk}/sequencer.sqlite'])
        router.start()
        self.addCleanup(router.cleanup)
        a = yield start_master(self, router)
        b = yield start_master(self, router)
        got = Collector(b)
        yield b.startConsuming(got, ('full', None))
        for i in range(MESSAGES):
            a.produce(('full', 'x'), {'i': i, 'pad': PAD})
        yield with_timeout(until(lambda: a.producer.refusals.count >= 3), 60,
                           'submits refused for a full disk')
        self.assertLess(len(got.received), MESSAGES)
        # room again: the master's retries go through, nothing lost or twice
        mount('-o', 'remount,size=64m', disk)
        yield got.wait_for(MESSAGES, timeout=60)
        self.assertEqual([d['i'] for d in got.data], list(range(MESSAGES)))
        errors = [str(e.value) for e in self.flushLoggedErrors(RuntimeError)]
        self.assertEqual(len(errors), 1, errors)
        self.assertIn('database or disk is full', errors[0])
        self.assertIn('refused a submit', errors[0])
        with open(router.log_path) as f:
            log = f.read()
        self.assertEqual(log.count('cannot write the journal'), 1)
        self.assertIn('database or disk is full', log)
        self.assertNotIn('cannot rollback', log)
        self.assertEqual(log.count('the journal takes writes again'), 1)
