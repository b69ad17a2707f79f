"""``buildbot-mq-ordered router``: write the node config, run Crossbar.

Crossbar replaces this process (exec), so SIGTERM and Ctrl-C reach it
directly and it shuts down cleanly. It is ready when the port accepts
connections.
"""

import json
import os
import sys

from buildbot_mq_ordered.routerconfig import SECRET_ENV
from buildbot_mq_ordered.routerconfig import node_config
from buildbot_mq_ordered.routerconfig import parse_secret_file


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
    p.add_argument('--loglevel', default='info',
                   choices=['none', 'critical', 'error', 'warn', 'info', 'debug', 'trace'])
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


def write_config(args, authids=()):
    if not 0 < args.port < 65536:
        raise SystemExit(f"--port must be between 1 and 65535, not {args.port}")
    if args.retention_messages < 1 or args.retention_seconds <= 0:
        raise SystemExit("--retention-messages and --retention-seconds must be positive")
    check_tls(args)
    os.makedirs(args.cbdir, exist_ok=True)
    config = node_config(
        args.port, host=args.host, realm=args.realm, cbdir=args.cbdir,
        open_realm=args.open_realm, retention_messages=args.retention_messages,
        retention_seconds=args.retention_seconds, fsync=args.fsync,
        authids=authids, tls_cert=args.tls_cert, tls_key=args.tls_key)
    path = os.path.join(os.path.abspath(args.cbdir), 'config.json')
    with open(path, 'w') as f:
        json.dump(config, f, indent=2)
    return path


def run(args):
    users = read_users(args.secret_file) if args.secret_file else []
    path = write_config(args, [authid for authid, _ in users])
    # secrets reach Crossbar through its environment, never through a file we write
    for i, (_, secret) in enumerate(users):
        os.environ[SECRET_ENV.format(i)] = secret
    argv = [sys.executable, '-c',
            'import sys, crossbar; sys.argv[0] = "crossbar"; sys.exit(crossbar.run())',
            'start', '--cbdir', os.path.abspath(args.cbdir), '--config', path,
            '--loglevel', args.loglevel]
    sys.stdout.flush()
    os.execv(sys.executable, argv)
