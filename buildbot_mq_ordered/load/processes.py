"""Child processes the demo, the bench and the tests start and stop: the
router (the project's own ``buildbot-mq-ordered router`` on a free loopback
port), spawned so that none outlives its parent; stopping process groups,
their memory, free loopback ports. Load nodes: ``load/nodes.py``."""

import os
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

from buildbot_mq_ordered.util.childprocess import die_with_parent

STARTUP_TIMEOUT = 60


def spawn_options():
    opts = {'start_new_session': True}
    # the death signal is tied to the thread that forks: only from the main one
    if sys.platform.startswith('linux') and \
            threading.current_thread() is threading.main_thread():
        opts['preexec_fn'] = die_with_parent
    return opts


def terminate(procs, grace=10.0):
    """Stop process groups: SIGTERM to all at once, SIGKILL what is left after
    ``grace`` seconds (at once if interrupted again while waiting)."""
    procs = [p for p in procs if p is not None]
    for p in procs:
        if p.poll() is None:
            try:
                os.killpg(p.pid, signal.SIGTERM)
            except (ProcessLookupError, PermissionError):
                pass
    deadline = time.monotonic() + grace
    try:
        for p in procs:
            try:
                p.wait(max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                pass
    except KeyboardInterrupt:
        pass  # interrupted again while waiting: no more grace
    finally:
        for p in procs:
            # the whole group: also children of a process that already exited
            try:
                os.killpg(p.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
            try:
                p.wait(5)
            except subprocess.TimeoutExpired:
                pass


def tree_rss(pid):
    """Resident memory (bytes) of a process and all its descendants."""
    import psutil
    try:
        root = psutil.Process(pid)
        procs = [root] + root.children(recursive=True)
    except psutil.Error:
        return 0
    total = 0
    for p in procs:
        try:
            total += p.memory_info().rss
        except psutil.Error:
            pass
    return total


def group_exits(pgid):
    """A pidfd for each process of a process group, opened before it is
    signalled (a PID may be reused, a pidfd not); [] where there are none."""
    import psutil
    if not hasattr(os, 'pidfd_open'):
        return []
    fds = []
    for p in psutil.process_iter():
        try:
            if os.getpgid(p.pid) == pgid:
                fds.append(os.pidfd_open(p.pid))
        except OSError:
            pass
    return fds


def wait_exits(fds, timeout):
    """Until each pidfd's process has exited, bounded. A zombie has: its
    sockets are closed even if nobody reaps it."""
    deadline = time.monotonic() + timeout
    try:
        for fd in fds:
            select.select([fd], [], [], max(0.0, deadline - time.monotonic()))
    finally:
        for fd in fds:
            os.close(fd)


def free_port():
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def port_open(port):
    try:
        socket.create_connection(('127.0.0.1', port), timeout=0.5).close()
        return True
    except OSError:
        return False


class Router:
    """The project's own ``buildbot-mq-ordered router`` as a child process on a
    free loopback port: started (and waited for), stopped, killed, its logs
    read. The demo, the bench and the integration tests use it."""

    def __init__(self, realm='buildbot', extra_args=(), port=None, cbdir=None):
        self.realm = realm
        self.extra_args = list(extra_args)
        self.port = port or free_port()
        self._own_cbdir = cbdir is None
        self.cbdir = cbdir or tempfile.mkdtemp(prefix='bmo-router-')
        self.proc = None

    @property
    def url(self):
        return f'ws://127.0.0.1:{self.port}/ws'

    @property
    def log_path(self):
        """Crossbar's log, written by the router command."""
        return os.path.join(self.cbdir, 'router.log')

    @property
    def console_path(self):
        """What the router command printed (its ready or error line)."""
        return os.path.join(self.cbdir, 'console.log')

    def start(self):
        """Start and block until the port accepts connections (bounded)."""
        self.start_async()
        return self.wait_ready()

    def start_async(self):
        """Start the router process; ``wait_ready()`` waits for its port."""
        os.makedirs(self.cbdir, exist_ok=True)
        log = open(self.console_path, 'ab')
        self.proc = subprocess.Popen(
            [sys.executable, '-m', 'buildbot_mq_ordered.cli', 'router',
             '--port', str(self.port), '--realm', self.realm, '--cbdir', self.cbdir,
             '--loglevel', 'info'] + self.extra_args,
            stdout=log, stderr=subprocess.STDOUT, **spawn_options())
        log.close()
        return self

    @staticmethod
    def start_together(routers):
        """Start them all, then wait for each (bounded): each takes seconds."""
        for r in routers:
            r.start_async()
        for r in routers:
            r.wait_ready()
        return routers

    def wait_ready(self):
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while not port_open(self.port):
            if self.proc.poll() is not None:
                raise RuntimeError(f"router exited with {self.proc.returncode}:\n"
                                   + self.log_tail())
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("router did not accept connections within "
                                   f"{STARTUP_TIMEOUT}s:\n" + self.log_tail())
            try:  # wait on the process (it may exit), bounded: then look again
                self.proc.wait(0.1)
            except subprocess.TimeoutExpired:
                pass
        return self

    def log_tail(self, n=40):
        text = ''
        for path in (self.log_path, self.console_path):
            try:
                with open(path, errors='replace') as f:
                    text += ''.join(f.readlines()[-n:])
            except OSError:
                pass
        return text

    @property
    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def rss(self):
        """Resident memory of the router's process tree, bytes (psutil)."""
        return tree_rss(self.proc.pid) if self.running else 0

    def stop(self, sig=signal.SIGTERM, timeout=30):
        """Stop the router's process group; return once every process of it
        has exited (bounded): its port and node directory are free then."""
        if self.proc is None:
            return
        exits = group_exits(self.proc.pid)
        if self.proc.poll() is None:
            self._signal(sig, timeout)
        try:  # whatever is left of the group: Crossbar's workers may outlive it
            os.killpg(self.proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        self.proc.wait(10)
        wait_exits(exits, 10)

    def _signal(self, sig, timeout):
        try:
            if sig == signal.SIGKILL:
                os.killpg(self.proc.pid, sig)
            else:
                # the router command tells Crossbar, which stops its workers:
                # a signal to each of them at once makes them race
                self.proc.send_signal(sig)
        except ProcessLookupError:
            return
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            pass

    def kill(self):
        self.stop(signal.SIGKILL)

    def cleanup(self):
        self.stop()
        if self._own_cbdir:
            shutil.rmtree(self.cbdir, ignore_errors=True)
