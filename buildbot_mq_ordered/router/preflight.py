"""The router command's checks before Crossbar starts: the options, the
secret file, the TLS files, the journal and the ports. Each problem is one
line, at once, where Crossbar would fail only after seconds of start-up
(or with a traceback).

Functions that find a problem with an option raise ``SystemExit`` with its
line; those that ask whether something can be used return the line or None.
"""

import errno
import os
import re
import socket

from buildbot_mq_ordered.router import journalurl
from buildbot_mq_ordered.router.nodeconfig import parse_secret_file

# the part of libpq's message that says why: after "... port N failed: "
PG_WHY = re.compile(r'.*failed: (?:FATAL:\s+)?')


def read_users(path):
    """The (authid, secret) pairs of --secret-file."""
    try:
        with open(path) as f:
            text = f.read()
    except OSError as e:
        raise SystemExit(f"--secret-file: cannot read {path}: {e.strerror}")
    try:
        return parse_secret_file(text, name=path)
    except ValueError as e:
        raise SystemExit(f"--secret-file: {e}")


def check_options(args):
    """The numbers and the TLS files."""
    for option, port in (('--port', args.port), ('--metrics-port', args.metrics_port)):
        if port is not None and not 0 < port < 65536:
            raise SystemExit(f"{option} must be between 1 and 65535, not {port}")
    if args.retention_messages < 1 or args.retention_seconds <= 0:
        raise SystemExit("--retention-messages and --retention-seconds must be positive")
    check_tls(args)


def check_tls(args):
    if bool(args.tls_cert) != bool(args.tls_key):
        raise SystemExit("--tls-cert and --tls-key go together")
    for option, path in (('--tls-cert', args.tls_cert), ('--tls-key', args.tls_key)):
        if path and not os.path.isfile(path):
            raise SystemExit(f"{option}: no such file: {path}")
    if args.tls_cert:
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
                         f"{journalurl.SHAPE}, not {journalurl.masked(args.journal)!r}")
    path = os.path.abspath(args.journal[len(prefix):])
    if not os.path.isdir(os.path.dirname(path)):
        raise SystemExit(f"--journal: no such directory: {os.path.dirname(path)}")
    return path


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


def ports_problem(host, port, metrics_port=None):
    """None if the router's ports can be listened on, else why not (one line)."""
    problem = port_problem(host, port)
    if not problem and metrics_port:
        problem = port_problem(host, metrics_port, '--metrics-port')
    return problem


def port_problem(host, port, option='--port'):
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
