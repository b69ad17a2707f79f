"""``buildbot-mq-ordered router``: check, write the node config, run Crossbar.

The checks are ``router/preflight.py`` and ``router/nodedir.py`` (who
holds the node directory); Crossbar runs as a child process
(``router/launcher.py``) whose output goes to ``router.log`` in the node
directory (and to the console with ``--verbose``); the console gets one
line when the router is ready, or one line and exit status 1 when it cannot
start (``router/startwatch.py``).
"""

import os

from buildbot_mq_ordered.router import journalurl
from buildbot_mq_ordered.router import nodedir
from buildbot_mq_ordered.router import preflight
from buildbot_mq_ordered.router.launcher import CrossbarRun
from buildbot_mq_ordered.router.launcher import crossbar_argv
from buildbot_mq_ordered.router.launcher import crossbar_env
from buildbot_mq_ordered.router.launcher import port_answers
from buildbot_mq_ordered.router.launcher import say
from buildbot_mq_ordered.router.nodeconfig import node_config
from buildbot_mq_ordered.router.startwatch import StartWatch


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
                        "started with it (one leads): libpq's URL, so several hosts "
                        "with ?target_session_attrs=read-write follow a failover "
                        "(HOST1:PORT1,HOST2:PORT2); the password from PGPASSWORD or "
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


def run(args):
    users = preflight.read_users(args.secret_file) if args.secret_file else []
    cbdir = os.path.abspath(args.cbdir)
    held = nodedir.holder(cbdir)
    if held and held.live:
        say(f"a router is already running from node directory {cbdir} "
            f"(PID {held.pid}): stop it or use another --cbdir", err=True)
        return 1
    preflight.check_options(args)
    journal = preflight.journal_path(args)
    if journalurl.is_postgresql(journal):
        preflight.check_postgresql(journal)
    problem = preflight.ports_problem(args.host, args.port, args.metrics_port)
    if problem:
        say(problem, err=True)
        return 1
    config_path = write_config(args, cbdir, journal, [authid for authid, _ in users])
    if held:
        nodedir.clear_stale(cbdir, held)
        say(f"node directory {cbdir} holds node.pid of a router that is gone "
            f"(PID {held.pid}); starting")
    log_path = os.path.join(cbdir, nodedir.LOG_FILE)
    watch = StartWatch(ready_line(args, journal, log_path), log_path, args.loglevel)
    return CrossbarRun(
        crossbar_argv(cbdir, config_path, args.loglevel),
        crossbar_env([secret for _, secret in users], journal), log_path, watch,
        probe=lambda: port_answers(args.host, args.port), verbose=args.verbose).run()


def write_config(args, cbdir, journal, authids):
    return nodedir.write_config(cbdir, node_config(
        args.port, host=args.host, realm=args.realm, cbdir=args.cbdir,
        open_realm=args.open_realm, retention_messages=args.retention_messages,
        retention_seconds=args.retention_seconds, fsync=args.fsync,
        authids=authids, tls_cert=args.tls_cert, tls_key=args.tls_key,
        journal=journalurl.without_password(journal)[0],
        metrics_port=args.metrics_port, metrics_host=args.host))


def ready_line(args, journal, log_path):
    url = f"{'wss' if args.tls_cert else 'ws'}://{args.host}:{args.port}/ws"
    return (f"ready at {url}, realm '{args.realm}', journal {journalurl.masked(journal)} "
            f"(Crossbar's log: {log_path})")
