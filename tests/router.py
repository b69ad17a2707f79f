"""A real Crossbar router for the tests, started with the project's own
``buildbot-mq-ordered router`` command on a free loopback port."""

import atexit
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

STARTUP_TIMEOUT = 60


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
        return os.path.join(self.cbdir, 'router.log')

    def start(self):
        """Start and block until the port accepts connections (bounded)."""
        log = open(self.log_path, 'ab')
        self.proc = subprocess.Popen(
            [sys.executable, '-m', 'buildbot_mq_ordered.cli', 'router',
             '--port', str(self.port), '--realm', self.realm, '--cbdir', self.cbdir,
             '--loglevel', 'info'] + self.extra_args,
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        log.close()
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
        try:
            with open(self.log_path, errors='replace') as f:
                return ''.join(f.readlines()[-n:])
        except OSError:
            return ''

    def stop(self, sig=signal.SIGTERM, timeout=30):
        if self.proc is None or self.proc.poll() is not None:
            return
        try:
            os.killpg(self.proc.pid, sig)
        except ProcessLookupError:
            return
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)

    def kill(self):
        self.stop(signal.SIGKILL)

    def cleanup(self):
        self.stop()
        if self._own_cbdir:
            shutil.rmtree(self.cbdir, ignore_errors=True)


_shared = None


def shared_router():
    """One router for all tests that need only a working router."""
    global _shared
    if _shared is None:
        _shared = Router().start()
        atexit.register(_shared.cleanup)
    return _shared
