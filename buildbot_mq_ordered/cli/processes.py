"""Processes the demo, the benchmark and the tests start: a router (the
project's own ``buildbot-mq-ordered router`` on a free loopback port) and
load nodes (``buildbot-mq-ordered node``), driven synchronously."""

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


class NodeProcess:
    """One ``buildbot-mq-ordered node`` process; see cli/node.py."""

    def __init__(self, router_url, name, out, realm='buildbot', mq='ordered-wamp',
                 messages=1000, expect=None, rate=0, payload=100, shared_keys=10,
                 distinct_keys=0, timeout=120, log_path=None):
        self.name = name
        self.out = out
        self.progress = (0, 0)
        self.ready = False
        self.done = False
        argv = [sys.executable, '-m', 'buildbot_mq_ordered.cli', 'node',
                '--router-url', router_url, '--realm', realm, '--mq', mq,
                '--name', name, '--messages', str(messages),
                '--expect', str(expect if expect is not None else messages),
                '--rate', str(rate), '--payload', str(payload),
                '--shared-keys', str(shared_keys), '--distinct-keys', str(distinct_keys),
                '--timeout', str(timeout), '--out', out]
        self.log_path = log_path or out + '.log'
        err = open(self.log_path, 'wb')
        self.proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=err, start_new_session=True)
        err.close()
        self._buf = b''

    def fileno(self):
        return self.proc.stdout.fileno()

    def read_lines(self):
        """Non-blocking: handle whatever the node printed; False at EOF."""
        chunk = os.read(self.fileno(), 65536)
        if not chunk:
            self.done = True
            return False
        self._buf += chunk
        *lines, self._buf = self._buf.split(b'\n')
        for line in lines:
            words = line.decode(errors='replace').split()
            if words[:1] == ['READY']:
                self.ready = True
            elif words[:1] == ['PROGRESS'] and len(words) == 3:
                self.progress = (int(words[1]), int(words[2]))
            elif words[:1] == ['DONE']:
                self.done = True
        return True

    def go(self):
        self.proc.stdin.write(b'GO\n')
        self.proc.stdin.flush()

    def result(self):
        with open(self.out) as f:
            return json.load(f)

    def stop(self, sig=signal.SIGTERM):
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, sig)
            except ProcessLookupError:
                pass
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)


def drive(nodes, until, deadline, on_tick=None, tick=0.5):
    """Read the nodes' output until until() is true or the deadline passes.

    on_tick() is called about every tick seconds (progress display, faults).
    Returns True if until() became true.
    """
    last_tick = time.monotonic()
    while not until():
        now = time.monotonic()
        if now > deadline:
            return False
        live = [n for n in nodes if not n.done]
        if not live:
            return until()
        ready, _, _ = select.select(live, [], [], min(tick, deadline - now))
        for n in ready:
            n.read_lines()
        if on_tick is not None and time.monotonic() - last_tick >= tick:
            last_tick = time.monotonic()
            on_tick()
    return True


def run_nodes(nodes, timeout, on_tick=None):
    """Wait for all READY, say GO, wait for all DONE; returns their results."""
    deadline = time.monotonic() + timeout
    if not drive(nodes, lambda: all(n.ready for n in nodes), deadline):
        raise RuntimeError("nodes not ready: " + ", ".join(
            n.name for n in nodes if not n.ready))
    for n in nodes:
        n.go()
    drive(nodes, lambda: all(n.done for n in nodes), deadline, on_tick)
    for n in nodes:
        try:
            n.proc.wait(max(1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            n.stop()
    return [n.result() if os.path.exists(n.out) else None for n in nodes]
