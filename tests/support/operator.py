"""Real ``buildbot`` masters as an operator runs them: ``buildbot
create-master`` / ``start`` / ``stop`` in a directory of their own, their
twistd.log read."""

import os
import signal
import subprocess
import sys
import time

BIN = os.path.dirname(sys.executable)


BUILDBOT = os.path.join(BIN, 'buildbot')


COMMAND_TIMEOUT = 120


LOG_TIMEOUT = 60     # a line shows up in twistd.log


STOP_TIMEOUT = 20    # `buildbot stop` returns, the process is gone


POLL = 0.2           # twistd.log offers nothing to wait on but its growth


MASTER_CFG = '''
{import_line}
from buildbot.plugins import schedulers, steps, util, worker

c = BuildmasterConfig = {{}}
c['mq'] = {{'type': {mq_type!r}, 'router_url': {url!r}, 'realm': {realm!r},
           'initial_retry_delay': 0.2, 'max_retry_delay': 2{extra}}}
c['db'] = {{'db_url': 'sqlite:///state.sqlite'}}
c['workers'] = [worker.Worker('w', 'p')]
c['protocols'] = {{'pb': {{'port': 'tcp:0:interface=127.0.0.1'}}}}
f = util.BuildFactory()
f.addStep(steps.ShellCommand(command=['true']))
c['builders'] = [util.BuilderConfig(name='b', workernames=['w'], factory=f)]
c['schedulers'] = [schedulers.ForceScheduler(name='force', builderNames=['b'])]
c['buildbotURL'] = 'http://127.0.0.1:8010/'
c['buildbotNetUsageData'] = None
'''


def run(argv, timeout=COMMAND_TIMEOUT):
    proc = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          timeout=timeout)
    return proc.returncode, proc.stdout.decode(errors='replace')


def read(path):
    try:
        with open(path, errors='replace') as f:
            return f.read()
    except FileNotFoundError:
        return ''


class MasterDir:
    def __init__(self, testcase, tmp, url='ws://127.0.0.1:1/ws', realm='buildbot',
                 mq_type='ordered-wamp', import_line='import buildbot_mq_ordered',
                 extra=''):
        self.testcase = testcase
        self.basedir = os.path.join(tmp, 'master')
        self.log = os.path.join(self.basedir, 'twistd.log')
        rc, out = run([BUILDBOT, 'create-master', '-q', self.basedir])
        testcase.assertEqual(rc, 0, out)
        with open(os.path.join(self.basedir, 'master.cfg'), 'w') as f:
            f.write(MASTER_CFG.format(import_line=import_line, mq_type=mq_type,
                                      url=url, realm=realm, extra=extra))
        testcase.addCleanup(self.kill)

    def pid(self):
        try:
            pid = int(read(os.path.join(self.basedir, 'twistd.pid')).strip())
            os.kill(pid, 0)
            return pid
        except (ValueError, OSError):
            return None

    def kill(self):
        pid = self.pid()
        if pid:
            os.kill(pid, signal.SIGKILL)

    def wait_log(self, text, timeout=LOG_TIMEOUT):
        """twistd.log once it contains text (bounded)."""
        deadline = time.monotonic() + timeout
        while True:
            log = read(self.log)
            if text in log:
                return log
            if time.monotonic() > deadline:
                self.testcase.fail(f"no {text!r} in twistd.log within {timeout}s:\n{log}")
            time.sleep(POLL)

    def stop(self):
        started = time.monotonic()
        rc, out = run([BUILDBOT, 'stop', self.basedir], timeout=STOP_TIMEOUT + 30)
        took = time.monotonic() - started
        self.testcase.assertEqual(rc, 0, out + read(self.log))
        self.testcase.assertIsNone(self.pid(), out)
        self.testcase.assertLess(took, STOP_TIMEOUT, read(self.log))
        return took
