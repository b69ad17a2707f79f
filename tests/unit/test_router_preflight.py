"""The router command's checks before Crossbar starts (router/preflight.py)
and who holds a node directory (router/nodedir.py): a live Crossbar holds
it; a process that is gone, a zombie or another program left a stale
node.pid. (Ports, PostgreSQL and real routers: tests/integration.)"""

import json
import os
import shutil
import tempfile
from argparse import Namespace

from twisted.trial import unittest

from buildbot_mq_ordered.router import nodedir
from buildbot_mq_ordered.router import preflight
from buildbot_mq_ordered.router.launcher import crossbar_env
from buildbot_mq_ordered.router.nodeconfig import SECRET_ENV


def options(**given):
    args = dict(port=8080, metrics_port=None, retention_messages=10, retention_seconds=1.0,
                tls_cert=None, tls_key=None)
    args.update(given)
    return Namespace(**args)


class TempDir(unittest.TestCase):

    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix='bmo-preflight-')
        self.addCleanup(shutil.rmtree, self.tmp, True)

    def write(self, name, text):
        path = os.path.join(self.tmp, name)
        with open(path, 'w') as f:
            f.write(text)
        return path

    def refused(self, says, check, *args):
        with self.assertRaises(SystemExit) as e:
            check(*args)
        self.assertEqual(str(e.exception.code), says)


class Options(TempDir):

    def test_numbers(self):
        preflight.check_options(options())
        self.refused("--port must be between 1 and 65535, not 0",
                     preflight.check_options, options(port=0))
        self.refused("--metrics-port must be between 1 and 65535, not 70000",
                     preflight.check_options, options(metrics_port=70000))
        self.refused("--retention-messages and --retention-seconds must be positive",
                     preflight.check_options, options(retention_seconds=0))

    def test_tls_files(self):
        self.refused("--tls-cert and --tls-key go together",
                     preflight.check_options, options(tls_cert='c.pem'))
        missing = os.path.join(self.tmp, 'missing.pem')
        self.refused(f"--tls-cert: no such file: {missing}",
                     preflight.check_options, options(tls_cert=missing, tls_key=missing))
        path = self.write('not.pem', 'not a certificate\n')
        self.refused(f"--tls-cert: {path} holds no PEM certificate",
                     preflight.check_options, options(tls_cert=path, tls_key=path))

    def test_secret_file(self):
        path = self.write('secrets', "# masters\nm1 one\n\nm2   two\n")
        self.assertEqual(preflight.read_users(path), [('m1', 'one'), ('m2', 'two')])
        missing = os.path.join(self.tmp, 'none')
        self.refused(f"--secret-file: cannot read {missing}: No such file or directory",
                     preflight.read_users, missing)

    def test_the_journal_password_and_secrets_go_through_the_environment(self):
        env = crossbar_env(['s1', 's2'], 'postgresql://bmo:hush@db:5432/j',
                           environ={'PYTHONPATH': '/x'})
        self.assertEqual(env[SECRET_ENV.format(0)], 's1')
        self.assertEqual(env[SECRET_ENV.format(1)], 's2')
        self.assertEqual(env['PGPASSWORD'], 'hush')
        self.assertTrue(env['PYTHONPATH'].endswith(os.pathsep + '/x'))
        self.assertNotIn('PGPASSWORD', crossbar_env([], '/j.sqlite', environ={}))


class NodePid(TempDir):
    """What node.pid names, read as Crossbar reads it."""

    def node_pid(self, pid):
        self.write(nodedir.PID_FILE, json.dumps({'pid': pid, 'argv': []}))

    def test_a_live_crossbar_holds_the_directory(self):
        self.assertTrue(nodedir.is_live_crossbar('sleeping', ['crossbar-controller']))
        self.assertTrue(nodedir.is_live_crossbar('running', ['python', '-u', '-c',
                                                             'import sys, crossbar; ...']))
        self.assertTrue(nodedir.is_live_crossbar('sleeping', None))   # unreadable

    def test_gone_zombie_or_another_program_is_stale(self):
        self.assertFalse(nodedir.is_live_crossbar(None, []))
        self.assertFalse(nodedir.is_live_crossbar('zombie', []))
        self.assertFalse(nodedir.is_live_crossbar('sleeping', ['vim', 'notes.txt']))

    def test_no_node_pid_or_a_corrupt_one_is_nobody(self):
        self.assertIsNone(nodedir.holder(self.tmp))
        self.write(nodedir.PID_FILE, 'not json')
        self.assertIsNone(nodedir.holder(self.tmp))

    def test_a_pid_that_no_process_has_is_stale(self):
        with open('/proc/sys/kernel/pid_max') as f:
            never = int(f.read())       # PIDs stay below it
        self.node_pid(never)
        self.assertEqual(nodedir.holder(self.tmp), nodedir.Holder(never, live=False))

    def test_our_own_pid_is_stale(self):
        self.node_pid(os.getpid())      # a container restarted: PIDs repeat
        self.assertEqual(nodedir.holder(self.tmp), nodedir.Holder(os.getpid(), live=False))

    def test_clearing_removes_only_the_stale_one(self):
        self.node_pid(123)
        nodedir.clear_stale(self.tmp, nodedir.Holder(124, live=False))
        self.assertEqual(nodedir.holder(self.tmp).pid, 123)
        nodedir.clear_stale(self.tmp, nodedir.Holder(123, live=False))
        self.assertIsNone(nodedir.holder(self.tmp))
        nodedir.clear_stale(self.tmp, nodedir.Holder(123, live=False))   # already gone

    def test_config_written_where_crossbar_reads_it(self):
        cbdir = os.path.join(self.tmp, 'new')
        path = nodedir.write_config(cbdir, {'version': 2})
        self.assertEqual(path, os.path.join(cbdir, 'config.json'))
        with open(path) as f:
            self.assertEqual(json.load(f), {'version': 2})
