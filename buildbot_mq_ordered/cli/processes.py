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
import threading
import time

STARTUP_TIMEOUT = 60


def _die_with_parent():
    """In the child, before exec: SIGTERM when the parent dies (Linux), so a
    driver killed with SIGKILL leaves no router or node behind."""
    try:
        import ctypes
        libc = ctypes.CDLL(None, use_errno=True)
        PR_SET_PDEATHSIG = 1
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    except Exception:
        pass


def _spawn_options():
    opts = {'start_new_session': True}
    # the death signal is tied to the thread that forks: only from the main one
    if sys.platform.startswith('linux') and \
            threading.current_thread() is threading.main_thread():
        opts['preexec_fn'] = _die_with_parent
    return opts


def require_crossbar(command):
    """Exit with a clear message when this machine cannot run a router."""
    import importlib.util
    if importlib.util.find_spec('crossbar') is None:
        raise SystemExit(f"{command} starts a router, which needs Crossbar on this "
                         "machine: pip install 'buildbot-mq-ordered[router]'")


class Interrupted(KeyboardInterrupt):
    """SIGINT, SIGTERM or SIGHUP while a driver runs (see ``signals_interrupt``)."""

    def __init__(self, signum):
        super().__init__(signum)
        self.signum = signum


def signals_interrupt():
    """Make SIGTERM and SIGHUP raise ``Interrupted`` like Ctrl-C does, so a
    driver's ``finally`` stops what it started. Returns a restore function."""
    def handler(signum, frame):
        raise Interrupted(signum)
    old = {}
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        try:
            old[sig] = signal.signal(sig, handler)
        except (ValueError, OSError):  # not the main thread
            pass

    def restore():
        for sig, h in old.items():
            signal.signal(sig, h)
    return restore


def say(text):
    print(text, flush=True)


def run_guarded(prefix, body, cleanup, what, keep=False):
    """The skeleton of a driver (demo, bench): ``body(tmp)`` runs in a fresh
    temporary directory with SIGTERM/SIGHUP interrupting like Ctrl-C;
    ``cleanup()`` always runs afterwards. Returns the exit status: body's,
    128 + signal when interrupted, 1 on a RuntimeError. The directory is
    kept (and named) when asked or when something failed.
    ``what()`` says what an interruption stops."""
    restore = signals_interrupt()
    tmp = tempfile.mkdtemp(prefix=prefix)
    status = 1
    try:
        status = body(tmp)
        return status
    except Interrupted as e:
        print(file=sys.stderr)
        say(f"interrupted (signal {e.signum}): stopping {what()}")
        status = 128 + e.signum
        return status
    except KeyboardInterrupt:
        print(file=sys.stderr)
        say(f"interrupted: stopping {what()}")
        status = 130
        return status
    except RuntimeError as e:
        say(f"error: {e}")
        return 1
    finally:
        try:
            cleanup()
        finally:
            restore()
            if keep or status not in (0, 130, 128 + signal.SIGTERM, 128 + signal.SIGHUP):
                say(f"logs and results kept in {tmp}")
            else:
                shutil.rmtree(tmp, ignore_errors=True)


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
            stdout=log, stderr=subprocess.STDOUT, **_spawn_options())
        log.close()
        return self

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
        if self.proc is None:
            return
        if self.proc.poll() is not None:
            try:  # Crossbar's workers may outlive the controller
                os.killpg(self.proc.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
            return
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
        try:  # whatever is left of the group
            os.killpg(self.proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        self.proc.wait(10)

    def kill(self):
        self.stop(signal.SIGKILL)

    def cleanup(self):
        self.stop()
        if self._own_cbdir:
            shutil.rmtree(self.cbdir, ignore_errors=True)


class NodeProcess:
    """One ``buildbot-mq-ordered node`` process; see cli/node.py.

    ``expect=0``: the node waits for ``send_expect(total)`` (after every
    node reported ``PRODUCED``; see ``announce_expect``). ``duration``: stop
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
                '--router-url', router_url, '--realm', realm, '--mq', mq,
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
                                     stderr=err, **_spawn_options())
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
