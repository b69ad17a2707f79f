"""Running Crossbar for the router command: its environment, the child
process, the operator's signals, and the pump that copies its output to
``router.log`` (and the console with ``--verbose``) and feeds it, line by
line, to the start-up watcher (``router/startwatch.py``).

SIGTERM, SIGHUP and Ctrl-C stop Crossbar (it ignores SIGINT itself, so it
is told once) and then this process.
"""

import os
import select
import signal
import socket
import subprocess
import sys

from buildbot_mq_ordered.router import journalurl
from buildbot_mq_ordered.router.nodeconfig import SECRET_ENV
from buildbot_mq_ordered.router.startwatch import STOP
from buildbot_mq_ordered.router.startwatch import Exit
from buildbot_mq_ordered.router.startwatch import Say
from buildbot_mq_ordered.util.childprocess import die_with_parent

PREFIX = 'buildbot-mq-ordered router:'
CROSSBAR = 'import sys, crossbar; sys.argv[0] = "crossbar"; sys.exit(crossbar.run())'
POLL = 0.2            # seconds between looks at the port, the signals, the child
SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)


def say(text, err=False):
    """One line of the router command on the console."""
    stream = sys.stderr if err else sys.stdout
    print(f"{PREFIX} {text}", file=stream, flush=True)


def crossbar_env(secrets, journal, environ=None):
    """Crossbar's environment: the masters' secrets and the journal's
    password reach it here, never through a file this command writes."""
    env = dict(os.environ if environ is None else environ)
    for i, secret in enumerate(secrets):
        env[SECRET_ENV.format(i)] = secret
    password = journalurl.without_password(journal)[1]
    if password is not None:
        env['PGPASSWORD'] = password       # libpq reads it
    from buildbot_mq_ordered.router import hide_bjdata
    env['PYTHONPATH'] = os.pathsep.join(
        [os.path.dirname(hide_bjdata.__file__)] +
        [p for p in env.get('PYTHONPATH', '').split(os.pathsep) if p])
    return env


def crossbar_argv(cbdir, config_path, loglevel):
    return [sys.executable, '-u', '-c', CROSSBAR, 'start', '--cbdir', cbdir,
            '--config', config_path, '--loglevel', loglevel]


def port_answers(host, port):
    """Whether the port on host accepts a connection (from this host)."""
    host = {'0.0.0.0': '127.0.0.1', '::': '::1', '': '127.0.0.1'}.get(host, host)
    try:
        socket.create_connection((host, port), timeout=0.5).close()
        return True
    except OSError:
        return False


def _child_setup():
    # Crossbar (and its workers, which inherit this) leaves SIGINT alone: a
    # terminal's Ctrl-C reaches this process, which tells Crossbar once
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    die_with_parent()


class CrossbarRun:
    """Owns one run of Crossbar as a child process: starts it, pumps its
    output, relays the operator's signals and carries out the decisions of
    its ``StartWatch``. ``cli/router.py:run`` makes one and runs it."""

    def __init__(self, argv, env, log_path, watch, probe, verbose=False):
        self._argv = argv
        self._env = env
        self._log_path = log_path
        self._watch = watch
        self._probe = probe          # () -> whether the router's port answers
        self._verbose = verbose
        self._signalled = False
        self._proc = None
        self._partial = b''

    def run(self):
        """Run Crossbar to its end; the router command's exit status."""
        with open(self._log_path, 'ab') as log:
            self._proc = subprocess.Popen(
                self._argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL, env=self._env, preexec_fn=_child_setup)
            for signum in SIGNALS:
                signal.signal(signum, self._on_signal)
            self._pump(log)
            status = self._proc.wait()
        return self._act(self._watch.exited(status))

    def _on_signal(self, signum, frame):
        # the loop acts on it: the watcher is fed from one place only
        self._signalled = True

    def _pump(self, log):
        """Copy Crossbar's output until it ends (or Crossbar exited and a
        leftover worker holds the pipe without a word)."""
        out = self._proc.stdout.fileno()
        while True:
            if select.select([out], [], [], POLL)[0]:
                chunk = os.read(out, 65536)
                if not chunk:
                    return
                self._copy(chunk, log)
            elif self._proc.poll() is not None:
                return
            if self._signalled:
                self._signalled = False
                self._act(self._watch.stop_asked())
            if self._watch.wants_probe and self._probe():
                self._act(self._watch.port_answers())

    def _copy(self, chunk, log):
        log.write(chunk)
        log.flush()
        if self._verbose:
            sys.stdout.buffer.write(chunk)
            sys.stdout.flush()
        *lines, self._partial = (self._partial + chunk).split(b'\n')
        for line in lines:
            self._act(self._watch.line(line.decode(errors='replace')))

    def _act(self, decisions):
        for decision in decisions:
            if isinstance(decision, Say):
                say(decision.text, decision.err)
            elif isinstance(decision, Exit):
                return decision.status
            elif decision == STOP:
                try:
                    self._proc.send_signal(signal.SIGTERM)
                except ProcessLookupError:
                    pass
        return None
