"""``buildbot-mq-ordered router`` as an operator runs it: one line when
ready, one line and status 1 when it cannot start, Crossbar's own output in
router.log, and nothing left running after Ctrl-C or SIGTERM. A node
directory whose node.pid names a router that is gone (a zombie controller,
a PID no process has) is taken over with one line; a live one is refused."""

import json
import os
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

import psutil
from twisted.internet import defer
from twisted.trial import unittest

from buildbot_mq_ordered.load.processes import free_port
from tests.support.util import until
from tests.support.util import with_timeout

CLI = [sys.executable, '-m', 'buildbot_mq_ordered.cli', 'router']
START_TIMEOUT = 60
STOP_TIMEOUT = 30


class RouterCommandCase(unittest.TestCase):
    """Router commands in sessions of their own, killed at the end."""
    timeout = 180

    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix='bmo-op-router-')
        self.addCleanup(shutil.rmtree, self.tmp, True)
        self.procs = []
        self.addCleanup(self.kill_all)

    def kill_all(self):
        for p in self.procs:
            if p.poll() is None:
                try:
                    os.killpg(p.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                p.wait(10)

    def start(self, *args, cbdir=None):
        """A router in a session of its own, as in a terminal."""
        cbdir = cbdir or os.path.join(self.tmp, 'router')
        proc = subprocess.Popen(CLI + ['--cbdir', cbdir] + list(args),
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                start_new_session=True)
        self.procs.append(proc)
        return proc

    def read_until(self, proc, text, timeout=START_TIMEOUT):
        """Console lines up to the first containing text (bounded)."""
        lines, buf = [], b''
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            ready, _, _ = select.select([proc.stdout], [], [], deadline - time.monotonic())
            if not ready:
                break
            chunk = os.read(proc.stdout.fileno(), 65536)
            if not chunk:
                break
            buf += chunk
            *done, buf = buf.split(b'\n')
            lines += [line.decode() for line in done]
            if any(text in line for line in lines):
                return lines
        self.fail(f"no {text!r} within {timeout}s; console: {lines + [buf.decode()]}")

    def run_to_end(self, *args, cbdir=None, timeout=START_TIMEOUT):
        started = time.monotonic()
        proc = subprocess.run(CLI + ['--cbdir', cbdir or os.path.join(self.tmp, 'r')] +
                              list(args), capture_output=True, text=True, timeout=timeout)
        return proc, time.monotonic() - started

    def group(self, proc):
        return [p for p in psutil.process_iter(['pid'])
                if _pgid(p.pid) == proc.pid]

    def stop_and_check(self, proc, how):
        members = self.group(proc)
        self.assertGreaterEqual(len(members), 3, "the command, Crossbar and its worker")
        how()
        out = proc.communicate(timeout=STOP_TIMEOUT)[0].decode()
        self.assertEqual(proc.returncode, 0, out)
        self.assertEqual(out, "buildbot-mq-ordered router: stopped\n")
        gone, alive = psutil.wait_procs(members, timeout=STOP_TIMEOUT)
        self.assertEqual(alive, [])

    def check_ready(self, proc, port, cbdir):
        started = time.monotonic()
        lines = self.read_until(proc, 'ready at')
        print(f"router ready in {time.monotonic() - started:.1f}s")
        cbdir = os.path.abspath(cbdir)
        self.assertEqual(lines, [
            f"buildbot-mq-ordered router: ready at ws://127.0.0.1:{port}/ws, realm "
            f"'buildbot', journal {cbdir}/sequencer.sqlite (Crossbar's log: "
            f"{cbdir}/router.log)"])
        with open(os.path.join(cbdir, 'router.log')) as f:
            log = f.read()
        self.assertIn('sequencer ready on realm buildbot', log)
        return log


class StartAndStop(RouterCommandCase):
    """One line when ready (the sequencer answers then); "stopped" or one
    error line with Crossbar's status at the end."""

    def test_one_line_when_ready_ctrl_c_stops_everything(self):
        port = free_port()
        cbdir = os.path.join(self.tmp, 'router')
        proc = self.start('--port', str(port))
        log = self.check_ready(proc, port, cbdir)
        # no traceback at start (bjdata's NumPy notice among them)
        self.assertNotIn('Traceback', log)
        self.assertNotIn('NumPy', log)
        # Ctrl-C in a terminal: SIGINT to the whole foreground group
        self.stop_and_check(proc, lambda: os.killpg(proc.pid, signal.SIGINT))
        with open(os.path.join(cbdir, 'router.log')) as f:
            self.assertNotIn('Traceback', f.read())

    def test_sigterm_to_the_command_stops_everything(self):
        port = free_port()
        proc = self.start('--port', str(port))
        self.check_ready(proc, port, os.path.join(self.tmp, 'router'))
        self.stop_and_check(proc, proc.terminate)

    def test_verbose_shows_crossbar_on_the_console(self):
        port = free_port()
        proc = self.start('--port', str(port), '--verbose')
        lines = self.read_until(proc, 'ready at')
        self.assertTrue(any('sequencer ready on realm buildbot' in line for line in lines))
        os.killpg(proc.pid, signal.SIGINT)
        proc.communicate(timeout=STOP_TIMEOUT)
        self.assertEqual(proc.returncode, 0)

    def test_ready_means_the_sequencer_answers(self):
        port = free_port()
        proc = self.start('--port', str(port))
        self.check_ready(proc, port, os.path.join(self.tmp, 'router'))
        # at once after the ready line: the router takes a client, its sequencer answers
        out = subprocess.run([sys.executable, '-m', 'buildbot_mq_ordered.cli', 'status',
                              '--router', f'ws://127.0.0.1:{port}/ws', '--json'],
                             capture_output=True, text=True, timeout=START_TIMEOUT)
        self.assertEqual(out.returncode, 0, out.stdout + out.stderr)
        self.assertTrue(json.loads(out.stdout)['sequencer'], out.stdout)
        self.stop_and_check(proc, proc.terminate)

    def test_crossbar_dying_after_ready_is_one_line_with_its_status(self):
        port = free_port()
        cbdir = os.path.join(self.tmp, 'router')
        proc = self.start('--port', str(port))
        self.check_ready(proc, port, cbdir)
        controller(proc).kill()
        out = proc.communicate(timeout=STOP_TIMEOUT)[0].decode()
        self.assertEqual(proc.returncode, 1)
        self.assertEqual(out, "buildbot-mq-ordered router: Crossbar exited unexpectedly "
                              f"(status -9); its log: {cbdir}/router.log\n")


class CannotStart(RouterCommandCase):
    """One line and status 1, before Crossbar starts or when its sequencer
    does not."""

    def test_port_in_use(self):
        with socket.socket() as s:
            s.bind(('127.0.0.1', 0))
            s.listen(1)
            port = s.getsockname()[1]
            proc, took = self.run_to_end('--port', str(port))
        self.assertEqual(proc.returncode, 1)
        self.assertEqual(proc.stdout, '')
        self.assertEqual(proc.stderr,
                         f"buildbot-mq-ordered router: port {port} on 127.0.0.1 is already "
                         "in use (another router?): stop that one or pick another --port\n")
        self.assertLess(took, 10)

    def test_metrics_port_in_use(self):
        with socket.socket() as s:
            s.bind(('127.0.0.1', 0))
            s.listen(1)
            port = s.getsockname()[1]
            proc, took = self.run_to_end('--port', str(free_port()), '--metrics-port',
                                         str(port))
        self.assertEqual(proc.returncode, 1)
        self.assertEqual(proc.stderr,
                         f"buildbot-mq-ordered router: port {port} on 127.0.0.1 is already "
                         "in use (another router?): stop that one or pick another "
                         "--metrics-port\n")
        proc, took = self.run_to_end('--port', str(free_port()), '--metrics-port', '70000')
        self.assertEqual(proc.returncode, 1)
        self.assertEqual(proc.stderr,
                         "--metrics-port must be between 1 and 65535, not 70000\n")

    def test_journal_cannot_be_opened(self):
        cbdir = os.path.join(self.tmp, 'r')
        os.makedirs(os.path.join(cbdir, 'sequencer.sqlite'))  # a directory
        proc, took = self.run_to_end('--port', str(free_port()), cbdir=cbdir)
        self.assertEqual(proc.returncode, 1, proc.stdout + proc.stderr)
        self.assertEqual(proc.stdout, '')
        self.assertEqual(
            proc.stderr,
            "buildbot-mq-ordered router: the sequencer did not start (sqlite3."
            "OperationalError: unable to open database file); its log: "
            f"{cbdir}/router.log\n")

    def test_not_a_certificate(self):
        path = os.path.join(self.tmp, 'not.pem')
        with open(path, 'w') as f:
            f.write('not a certificate\n')
        proc, took = self.run_to_end('--port', str(free_port()), '--tls-cert', path,
                                     '--tls-key', path)
        self.assertEqual(proc.returncode, 1)
        self.assertEqual(proc.stderr, f"--tls-cert: {path} holds no PEM certificate\n")


class NodeDirectory(RouterCommandCase):
    """A live router's node directory is refused; one whose node.pid names
    a router that is gone (a zombie controller, a PID no process has) is
    taken over with one line."""

    def test_node_directory_in_use(self):
        port = free_port()
        cbdir = os.path.join(self.tmp, 'shared')
        first = self.start('--port', str(port), cbdir=cbdir)
        self.read_until(first, 'ready at')
        proc, took = self.run_to_end('--port', str(free_port()), cbdir=cbdir)
        self.assertEqual(proc.returncode, 1)
        self.assertEqual(proc.stdout, '')
        self.assertRegex(proc.stderr,
                         r"^buildbot-mq-ordered router: a router is already running from "
                         rf"node directory {cbdir} \(PID \d+\): stop it or use another "
                         r"--cbdir\n$")
        # the running router's configuration was left alone
        with open(os.path.join(cbdir, 'config.json')) as f:
            self.assertIn(f'"port": {port}', f.read())
        self.stop_and_check(first, first.terminate)

    @defer.inlineCallbacks
    def test_node_pid_of_a_zombie_controller_is_stale(self):
        # the first router's controller killed while the command that would
        # reap it is stopped: node.pid names a zombie (Crossbar's own check
        # raised psutil.ZombieProcess on it and exited)
        cbdir = os.path.join(self.tmp, 'router')
        first = self.start('--port', str(free_port()), cbdir=cbdir)
        self.read_until(first, 'ready at')
        ctl = controller(first)
        tree = [ctl] + ctl.children(recursive=True)
        os.kill(first.pid, signal.SIGSTOP)
        self.addCleanup(os.kill, first.pid, signal.SIGCONT)
        for p in tree:
            p.kill()
        yield with_timeout(until(lambda: all(_dead(p) for p in tree)), 30,
                           "the first router's Crossbar dead")
        self.assertEqual(ctl.status(), psutil.STATUS_ZOMBIE)
        self.assertEqual(node_pid(cbdir), ctl.pid)
        self.check_takes_over(cbdir, ctl.pid)

    def test_node_pid_of_a_process_that_is_gone_is_stale(self):
        cbdir = os.path.join(self.tmp, 'router')
        os.makedirs(cbdir)
        gone = subprocess.Popen(['true'])
        gone.wait()
        with open(os.path.join(cbdir, 'node.pid'), 'w') as f:
            json.dump({'pid': gone.pid}, f)
        self.check_takes_over(cbdir, gone.pid)

    def check_takes_over(self, cbdir, pid):
        port = free_port()
        proc = self.start('--port', str(port), cbdir=cbdir)
        lines = self.read_until(proc, 'ready at')
        self.assertEqual(len(lines), 2, lines)
        self.assertEqual(lines[0], f"buildbot-mq-ordered router: node directory {cbdir} "
                                   f"holds node.pid of a router that is gone (PID {pid}); "
                                   "starting")
        self.assertTrue(lines[1].startswith(
            f"buildbot-mq-ordered router: ready at ws://127.0.0.1:{port}/ws"), lines)
        self.assertNotEqual(node_pid(cbdir), pid)
        self.stop_and_check(proc, proc.terminate)


def controller(proc):
    """The Crossbar controller a router command started."""
    [child] = psutil.Process(proc.pid).children()
    return child


def node_pid(cbdir):
    with open(os.path.join(cbdir, 'node.pid')) as f:
        return json.load(f)['pid']


def _dead(process):
    try:
        return process.status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def _pgid(pid):
    try:
        return os.getpgid(pid)
    except OSError:
        return None
