"""``buildbot-mq-ordered status``: the cluster as the router's monitor sees it.

It joins the router as a master does (``RouterLink``: the same URL, realm,
credentials and CA options as ``tail``), calls the monitor's ``status``
(``monitor.py``) once, prints it - the stream, the sequencer, one row per
master - and exits 0 when healthy, 1 with the reasons when not (no
sequencer or leader, a stale master, a lag beyond ``--max-lag``), 2 on a
usage error, 3 when the router could not be asked.
"""

import json
import sys

from buildbot_mq_ordered.cli.routerargs import add_router_args
from buildbot_mq_ordered.cli.routerargs import check_router_args
from buildbot_mq_ordered.load.texttable import aligned
from buildbot_mq_ordered.router.monitor.clusterview import problems

PROG = 'buildbot-mq-ordered status'
UNHEALTHY, USAGE, UNREACHABLE = 1, 2, 3
COLUMNS = ('master', 'delivered', 'lag', 'outbox', 'buffer', 'skipped', 'replayed',
           'reconnects', 'report age', 'state')


def add_parser(sub):
    p = sub.add_parser('status', help="the cluster: stream, sequencer, masters; exit "
                                      "status 0 when healthy")
    add_router_args(p)
    p.add_argument('--json', action='store_true', help="the whole status as one JSON object")
    p.add_argument('--max-lag', metavar='N', type=int,
                   help="unhealthy when a master lags more than N positions")
    p.add_argument('--timeout', metavar='SECONDS', type=float, default=10.0,
                   help="give up asking the router after this long (default: 10)")
    p.set_defaults(run=run)


def check_args(args):
    errors = check_router_args(args)
    if args.max_lag is not None and args.max_lag < 0:
        errors.append(f"--max-lag must be 0 or more, not {args.max_lag}")
    if args.timeout <= 0:
        errors.append(f"--timeout must be positive, not {args.timeout}")
    return errors


def _cell(v):
    return '-' if v is None else v


def render(status, found):
    """The text report: a few lines on the stream, a table of masters, the verdict."""
    s = status
    lines = [
        f"stream {_cell(s['stream_id'])}: head {_cell(s['head'])}, first retained "
        f"{_cell(s['first_pos'])}, journal rows {_cell(s.get('journal_rows'))}, "
        f"bytes {_cell(s.get('journal_bytes'))}",
        f"sequencer: {s['sequencer'] or 'none'}, leader {_cell(s.get('leader'))}, "
        f"term {_cell(s.get('term'))}; {s['rate']:.1f} messages/s over the last minute",
        '',
    ]
    rows = [(m['master'], _cell(m['delivered_pos']), _cell(m['lag']), m['outbox'],
             m['buffer'], m['skipped'], m['replayed'], m['reconnects'],
             f"{m['age']:.1f}s", m['state']) for m in s['masters']]
    lines += aligned(COLUMNS, rows) if rows else ['no master has reported']
    lines.append('')
    lines += ['healthy'] if not found else [f"unhealthy: {p}" for p in found]
    return lines


def ask(reactor, args):
    """Fires with the monitor's status dict (errback: why not)."""
    from twisted.internet import defer

    from buildbot_mq_ordered import wire
    from buildbot_mq_ordered.master import config
    from buildbot_mq_ordered.master.link import RouterLink
    from buildbot_mq_ordered.util.backoff import Backoff

    answer = defer.Deferred()
    opts = {'authid': args.authid, 'secret_file': args.secret_file, 'secret': None}
    authentication = yield config.authentication(opts, None)

    asked = []   # the routers that answered, in turn

    def answered(status):
        asked.append(status)
        if ask_next(status, len(asked), len(args.router)):
            link.move_on()
        elif not answer.called:
            answer.callback(status)

    def joined(session):
        if not answer.called:
            session.call(wire.STATUS).addCallbacks(
                answered, lambda f: answer.called or answer.errback(f))

    link = RouterLink(args.router, args.realm, joined, lambda: None,
                      Backoff(0.5, 1.5, 2.0, jitter=0.1),
                      authentication=authentication, ca_file=args.ca_file,
                      authid=args.authid, reactor=reactor)
    timer = reactor.callLater(args.timeout, lambda: answer.called or answer.errback(
        TimeoutError(f"no answer from {' or '.join(args.router)} within "
                     f"{args.timeout:g}s (is the router running there?)")))
    link.start()
    try:
        status = yield answer
    finally:
        if timer.active():
            timer.cancel()
        yield link.stop()
    return status


def ask_next(status, answered, routers):
    """With several --router (a leader and standbys), a router whose
    sequencer does not lead is asked last: its monitor knows no masters
    (they report to the leader's router)."""
    return status['sequencer'] != 'leading' and answered < routers


def explain(failure):
    from autobahn.wamp.exception import ApplicationError
    if failure.check(ApplicationError) and \
            failure.value.error == 'wamp.error.no_such_procedure':
        return "the router answers no status: no monitor runs in it (an older router?)"
    return failure.getErrorMessage()


def main(reactor, args, out=sys.stdout, err=sys.stderr):
    from twisted.internet import defer
    try:
        status = yield defer.inlineCallbacks(ask)(reactor, args)
    except Exception:
        from twisted.python.failure import Failure
        print(f"{PROG}: {explain(Failure())}", file=err)
        return UNREACHABLE
    found = problems(status, args.max_lag)
    if args.json:
        out.write(json.dumps(dict(status, problems=found, healthy=not found),
                             sort_keys=True) + '\n')
    else:
        out.write('\n'.join(render(status, found)) + '\n')
    out.flush()
    return UNHEALTHY if found else 0


def run(args):
    errors = check_args(args)
    if errors:
        for e in errors:
            print(f"{PROG}: {e}", file=sys.stderr)
        return USAGE
    from twisted.internet import defer
    from twisted.internet import reactor
    code = []

    def go():
        d = defer.inlineCallbacks(main)(reactor, args)
        d.addCallback(code.append)
        d.addErrback(lambda f: (code.append(UNREACHABLE), print(f"{PROG}: {f.value}",
                                                                file=sys.stderr)))
        d.addBoth(lambda _: reactor.stop())
    reactor.callWhenRunning(go)
    reactor.run()
    return code[0] if code else UNREACHABLE
