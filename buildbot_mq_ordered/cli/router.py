"""``buildbot-mq-ordered router``: write the node config, run Crossbar.

Crossbar runs as a child process whose output goes to ``router.log`` in the
node directory (and to the console with ``--verbose``); the console gets
one line when the router is ready, or one line and exit status 1 when it
cannot start. SIGTERM, SIGHUP and Ctrl-C stop Crossbar (it ignores SIGINT
itself, so it is told once) and then this process.
"""

import errno
import json
import os
import re
import select
import signal
import socket
import subprocess
import sys

from buildbot_mq_ordered.router import journalurl
from buildbot_mq_ordered.router.nodeconfig import SECRET_ENV
from buildbot_mq_ordered.router.nodeconfig import node_config
from buildbot_mq_ordered.router.nodeconfig import parse_secret_file
from buildbot_mq_ordered.util.childprocess import die_with_parent


def add_parser(sub):
    p = sub.add_parser('router', help="run the Crossbar router with the sequencer")
    p.add_argument('--port', type=int, required=True, help="TCP port to listen on")
    p.add_argument('--host', default='127.0.0.1',
                   help="interface to listen on (default: 127.0.0.1, loopback only)")
    p.add_argument('--realm', default='buildbot', help="WAMP realm (default: buildbot)")
    p.add_argument('--cbdir', default='.crossbar',
                   help="node directory: config, logs and the sequencer journal "
                        "(default: ./.crossbar)")
    p.add_argument('--retention-messages', type=int, default=1000000,
                   help="journal keeps at most this many messages (default: 1000000)")
    p.add_argument('--retention-seconds', type=float, default=7 * 86400,
                   help="journal keeps messages at most this old (default: 7 days)")
    p.add_argument('--journal', metavar='URL',
                   help="where the sequencer keeps its journal: sqlite:///PATH, the "
                        "path relative to the current directory, or sqlite:////PATH "
                        "absolute (default: sequencer.sqlite in the node directory); "
                        "or postgresql://USER@HOST[:PORT]/DB, shared by every router "
                        "started with it (one leads); the password from PGPASSWORD or "
                        "PGPASSFILE (~/.pgpass), never on the command line")
    p.add_argument('--fsync', action='store_true',
                   help="fsync the journal on every batch (survives power loss)")
    p.add_argument('--secret-file',
                   help="masters' credentials, one 'authid secret' per line: only "
                        "these may join (WAMP-CRA); without it, anyone who reaches the "
                        "port joins as a master")
    p.add_argument('--tls-cert', help="serve wss:// with this PEM certificate (chain)")
    p.add_argument('--tls-key', help="... and this PEM private key")
    p.add_argument('--open-realm', action='store_true',
                   help="let every session publish/register anything (tests and the "
                        "stock wamp MQ only; never in production)")
    p.add_argument('--metrics-port', type=int, metavar='PORT',
                   help="serve /metrics (Prometheus) and /healthz over HTTP on this "
                        "port, on --host's interface (docs/operations.rst)")
    p.add_argument('--loglevel', default='info',
                   choices=['none', 'critical', 'error', 'warn', 'info', 'debug', 'trace'],
                   help="Crossbar's log level (default: info)")
    p.add_argument('--verbose', action='store_true',
                   help="also show Crossbar's log on the console (it always goes to "
                        "router.log in the node directory)")
    p.set_defaults(run=run)


def read_users(path):
    try:
        with open(path) as f:
            text = f.read()
    except OSError as e:
        raise SystemExit(f"--secret-file: cannot read {path}: {e.strerror}")
    try:
        return parse_secret_file(text, name=path)
    except ValueError as e:
        raise SystemExit(f"--secret-file: {e}")


def check_tls(args):
    if bool(args.tls_cert) != bool(args.tls_key):
        raise SystemExit("--tls-cert and --tls-key go together")
    for option, path in (('--tls-cert', args.tls_cert), ('--tls-key', args.tls_key)):
        if path and not os.path.isfile(path):
            raise SystemExit(f"{option}: no such file: {path}")
    if args.tls_cert:
        # checked here: Crossbar would fail on them only after seconds of start-up
        from OpenSSL import crypto
        for option, path, load, what in (
                ('--tls-cert', args.tls_cert, crypto.load_certificate, 'certificate'),
                ('--tls-key', args.tls_key, crypto.load_privatekey, 'private key')):
            with open(path, 'rb') as f:
                data = f.read()
            try:
                load(crypto.FILETYPE_PEM, data)
            except crypto.Error:
                raise SystemExit(f"{option}: {path} holds no PEM {what}")


def journal_path(args):
    """The journal --journal names: an absolute SQLite path (the node
    directory's by default) or a postgresql:// URL as given."""
    if args.journal is None:
        return os.path.join(os.path.abspath(args.cbdir), 'sequencer.sqlite')
    if journalurl.is_postgresql(args.journal):
        problem = journalurl.check_postgresql(args.journal)
        if problem:
            raise SystemExit(f"--journal: {journalurl.masked(args.journal)}: {problem}")
        return args.journal
    prefix = journalurl.SQLITE
    if not args.journal.startswith(prefix) or len(args.journal) == len(prefix):
        raise SystemExit(f"--journal must be sqlite:///PATH or "
                         f"postgresql://USER@HOST[:PORT]/DB, not {args.journal!r}")
    path = os.path.abspath(args.journal[len(prefix):])
    if not os.path.isdir(os.path.dirname(path)):
        raise SystemExit(f"--journal: no such directory: {os.path.dirname(path)}")
    return path


# the part of libpq's message that says why: after "... port N failed: "
PG_WHY = re.compile(r'.*failed: (?:FATAL:\s+)?')


def check_postgresql(url):
    """Exit with one line when the journal's server cannot be used."""
    try:
        from buildbot_mq_ordered.router.journal.postgres import connect
    except ImportError:
        raise SystemExit("--journal postgresql://... needs psycopg on this machine: "
                         "pip install 'buildbot-mq-ordered[router]'")
    import psycopg
    try:
        connect(url).close()
    except psycopg.Error as e:
        why = PG_WHY.sub('', str(e).splitlines()[0] if str(e) else type(e).__name__)
        raise SystemExit(f"--journal: cannot use PostgreSQL at {journalurl.host_port(url)} "
                         f"({journalurl.masked(url)}): {why}")


def write_config(args, authids=()):
    for option, port in (('--port', args.port), ('--metrics-port', args.metrics_port)):
        if port is not None and not 0 < port < 65536:
            raise SystemExit(f"{option} must be between 1 and 65535, not {port}")
    if args.retention_messages < 1 or args.retention_seconds <= 0:
        raise SystemExit("--retention-messages and --retention-seconds must be positive")
    check_tls(args)
    os.makedirs(args.cbdir, exist_ok=True)
    config = node_config(
        args.port, host=args.host, realm=args.realm, cbdir=args.cbdir,
        open_realm=args.open_realm, retention_messages=args.retention_messages,
        retention_seconds=args.retention_seconds, fsync=args.fsync,
        authids=authids, tls_cert=args.tls_cert, tls_key=args.tls_key,
        journal=journalurl.without_password(journal_path(args))[0],
        metrics_port=args.metrics_port, metrics_host=args.host)
    path = os.path.join(os.path.abspath(args.cbdir), 'config.json')
    with open(path, 'w') as f:
        json.dump(config, f, indent=2)
    return path


PREFIX = 'buildbot-mq-ordered router:'
READY_LINE = 'sequencer ready on realm'   # sequencer.py, at log level info
BOOTED = 'NODE_BOOT_COMPLETE'             # Crossbar started every component
CROSSBAR = 'import sys, crossbar; sys.argv[0] = "crossbar"; sys.exit(crossbar.run())'


def say(text, err=False):
    stream = sys.stderr if err else sys.stdout
    print(f"{PREFIX} {text}", file=stream, flush=True)


def _probe_host(host):
    return {'0.0.0.0': '127.0.0.1', '::': '::1', '': '127.0.0.1'}.get(host, host)


def check_port(host, port, option='--port'):
    """None if the port can be listened on, else why not (one line)."""
    family = socket.AF_INET6 if ':' in host else socket.AF_INET
    with socket.socket(family) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError as e:
            if e.errno == errno.EADDRINUSE:
                return (f"port {port} on {host} is already in use (another router?): "
                        f"stop that one or pick another {option}")
            return f"cannot listen on {host}:{port}: {e.strerror}"
    return None


def port_open(host, port):
    try:
        socket.create_connection((_probe_host(host), port), timeout=0.5).close()
        return True
    except OSError:
        return False


def running_router(cbdir):
    """PID of a Crossbar node running from cbdir (its node.pid), or None."""
    try:
        with open(os.path.join(cbdir, 'node.pid')) as f:
            pid = int(json.load(f)['pid'])
        with open(f'/proc/{pid}/cmdline', 'rb') as f:
            cmdline = f.read()
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return pid if b'crossbar' in cmdline else None


# "2026-11-27T09:26:31+0000 [Router       3966] " before each line of Crossbar's log
LOG_PREFIX = re.compile(r'^\S+ \[[^]]*\] ')
EXCEPTION = re.compile(r'^([\w.]*(?:Error|Exception)): (.+)')


def start_error(lines, rc, log_path, detail_only=False):
    """One line saying why Crossbar stopped before it was ready."""
    causes = []
    for line in lines:
        text = LOG_PREFIX.sub('', line).strip()
        if 'is already running from node directory' in text:
            return (text[text.index('Crossbar'):].rstrip('.') +
                    ": stop it or use another --cbdir")
        if 'Address already in use' in text:
            return "the port is already in use (another router?): pick another --port"
        m = EXCEPTION.match(text)
        if m and 'ApplicationError' not in m.group(1):
            causes.append(f"{m.group(1)}: {m.group(2)}")
    # the first exception is the cause; what follows reports it again
    detail = causes[0] if causes else f"exit status {rc}"
    if detail_only:
        return detail
    return f"Crossbar stopped before it was ready ({detail}); its log: {log_path}"


def _child_setup():
    # Crossbar (and its workers, which inherit this) leaves SIGINT alone: a
    # terminal's Ctrl-C reaches this process, which tells Crossbar once
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    die_with_parent()


def run(args):
    users = read_users(args.secret_file) if args.secret_file else []
    pid = running_router(args.cbdir)
    if pid:
        say(f"a router is already running from node directory {os.path.abspath(args.cbdir)} "
            f"(PID {pid}): stop it or use another --cbdir", err=True)
        return 1
    path = write_config(args, [authid for authid, _ in users])
    cbdir = os.path.abspath(args.cbdir)
    log_path = os.path.join(cbdir, 'router.log')
    journal = journal_path(args)
    if journalurl.is_postgresql(journal):
        check_postgresql(journal)
    url = f"{'wss' if args.tls_cert else 'ws'}://{args.host}:{args.port}/ws"
    problem = check_port(args.host, args.port)
    if not problem and args.metrics_port:
        problem = check_port(args.host, args.metrics_port, '--metrics-port')
    if problem:
        say(problem, err=True)
        return 1
    env = dict(os.environ)
    # secrets reach Crossbar through its environment, never through a file we write
    for i, (_, secret) in enumerate(users):
        env[SECRET_ENV.format(i)] = secret
    # and so does a password in the journal's URL (libpq reads PGPASSWORD)
    password = journalurl.without_password(journal)[1]
    if password is not None:
        env['PGPASSWORD'] = password
    from buildbot_mq_ordered.router import hide_bjdata
    env['PYTHONPATH'] = os.pathsep.join(
        [os.path.dirname(hide_bjdata.__file__)] +
        [p for p in env.get('PYTHONPATH', '').split(os.pathsep) if p])
    argv = [sys.executable, '-u', '-c', CROSSBAR, 'start', '--cbdir', cbdir,
            '--config', path, '--loglevel', args.loglevel]
    # the sequencer's line says the realm is served; without info lines, the port
    need_line = args.loglevel in ('info', 'debug', 'trace')
    stopping = []

    def stop(signum, frame):
        if not stopping:
            stopping.append(signum)
            try:
                proc.send_signal(signal.SIGTERM)
            except ProcessLookupError:
                pass

    with open(log_path, 'ab') as log:
        proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, env=env, preexec_fn=_child_setup)
        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            signal.signal(sig, stop)
        ready = seen_line = False
        failed = None
        recent = []
        buf = b''
        out = proc.stdout.fileno()
        while True:
            readable, _, _ = select.select([out], [], [], 0.2)
            if readable:
                chunk = os.read(out, 65536)
                if not chunk:
                    break
                log.write(chunk)
                log.flush()
                if args.verbose:
                    sys.stdout.buffer.write(chunk)
                    sys.stdout.flush()
                buf += chunk
                *lines, buf = buf.split(b'\n')
                for raw in lines:
                    line = raw.decode(errors='replace')
                    seen_line = seen_line or READY_LINE in line
                    recent = (recent + [line])[-500:]
                    if BOOTED in line and need_line and not seen_line and not failed:
                        # the node is up but the sequencer is not: its journal failed
                        failed = "the sequencer did not start"
                        proc.send_signal(signal.SIGTERM)
            if not ready and not stopping and not failed and \
                    (seen_line or not need_line) and port_open(args.host, args.port):
                ready = True
                say(f"ready at {url}, realm '{args.realm}', journal "
                    f"{journalurl.masked(journal)} "
                    f"(Crossbar's log: {log_path})")
        rc = proc.wait()
    if failed:
        say(f"{failed} ({start_error(recent, rc, log_path, detail_only=True)}); "
            f"its log: {log_path}", err=True)
        return 1
    if stopping:
        say("stopped")
        return 0
    if not ready:
        say(start_error(recent, rc, log_path), err=True)
        return 1
    say(f"Crossbar exited unexpectedly (status {rc}); its log: {log_path}", err=True)
    return 1
