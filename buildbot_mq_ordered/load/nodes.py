"""Load nodes as child processes (``buildbot-mq-ordered node``, see
``load/loadnode.py``), driven synchronously over their stdin and stdout."""

import json
import os
import select
import signal
import subprocess
import sys
import time

from buildbot_mq_ordered.load.processes import spawn_options


class NodeProcess:
    """One ``buildbot-mq-ordered node`` process; see cli/node.py.

    ``expect=0``: the node waits for ``send_expect(total)`` (``run_nodes``
    sends it once every node reported ``PRODUCED``). ``duration``: stop
    producing after that many seconds (with ``rate=0``, flat out until then).
    ``record=False``: only the constant-size summary in the result.
    """

    def __init__(self, router_url, name, out, realm='buildbot', mq='ordered-wamp',
                 messages=1000, expect=None, rate=0, payload=100, shared_keys=10,
                 distinct_keys=0, timeout=120, log_path=None, duration=0,
                 window=2000, index=0, nodes=1, record=True):
        self.name = name
        self.out = out
        self.progress = (0, 0)
        self.produced_final = None
        self.ready = False
        self.done = False
        argv = [sys.executable, '-m', 'buildbot_mq_ordered.cli', 'node',
                '--router-url', router_url if isinstance(router_url, str)
                else ','.join(router_url), '--realm', realm, '--mq', mq,
                '--name', name, '--messages', str(messages),
                '--expect', str(expect if expect is not None else messages),
                '--rate', str(rate), '--payload', str(payload),
                '--shared-keys', str(shared_keys), '--distinct-keys', str(distinct_keys),
                '--duration', str(duration), '--window', str(window),
                '--index', str(index), '--nodes', str(nodes),
                '--timeout', str(timeout), '--out', out]
        if not record:
            argv.append('--no-record')
        self.log_path = log_path or out + '.log'
        err = open(self.log_path, 'wb')
        self.proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=err, **spawn_options())
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
            elif words[:1] == ['PRODUCED'] and len(words) == 2:
                self.produced_final = int(words[1])
            elif words[:1] == ['DONE']:
                self.done = True
        return True

    def _send(self, line):
        try:
            self.proc.stdin.write(line)
            self.proc.stdin.flush()
        except (BrokenPipeError, ValueError):
            pass  # the node is gone; its result (or absence) tells

    def go(self):
        self._send(b'GO\n')

    def send_expect(self, total):
        self._send(b'EXPECT %d\n' % total)

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
        self.close()

    def close(self):
        for f in (self.proc.stdin, self.proc.stdout):
            try:
                f.close()
            except OSError:
                pass


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


def run_nodes(nodes, timeout, on_tick=None, tick=0.5, on_go=None):
    """Wait for all READY, say GO, wait for all DONE; returns their results.

    Nodes started with ``expect=0`` are told the total to deliver once all
    of them reported ``PRODUCED``. ``on_go()`` is called right after GO.
    """
    deadline = time.monotonic() + timeout
    if not drive(nodes, lambda: all(n.ready for n in nodes), deadline):
        raise RuntimeError("nodes not ready: " + ", ".join(
            n.name for n in nodes if not n.ready))
    for n in nodes:
        n.go()
    if on_go is not None:
        on_go()
    announced = []
    last_tick = [time.monotonic()]

    def check():
        for n in nodes:
            if n.done and n.produced_final is None:
                n.produced_final = n.progress[1]  # it died: what it last reported
        if not announced and all(n.produced_final is not None for n in nodes):
            announced.append(sum(n.produced_final for n in nodes))
            for n in nodes:
                n.send_expect(announced[0])
        if on_tick is not None and time.monotonic() - last_tick[0] >= tick:
            last_tick[0] = time.monotonic()
            on_tick()
    drive(nodes, lambda: all(n.done for n in nodes), deadline, check, tick=min(tick, 0.1))
    for n in nodes:
        try:
            n.proc.wait(max(1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            n.stop()
    return [n.result() if os.path.exists(n.out) else None for n in nodes]


def produced_counts(nodes, results):
    """{node name: messages it produced}: from its result, or, where it wrote
    none, what it last reported."""
    return {n.name: r['produced'] if r is not None else (n.produced_final or n.progress[1])
            for n, r in zip(nodes, results)}
