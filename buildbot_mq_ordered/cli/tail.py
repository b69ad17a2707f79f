"""``buildbot-mq-ordered tail``: print the stream as the sequencer orders it.

From the journal first (``--from POS`` or ``--last N``), then live, until
Ctrl-C: one line per message, position, per-key number, routing key and
data (abbreviated, unless ``--json``: then one JSON object per line, the
data in full). ``--filter`` takes a routing key pattern, Buildbot's
matching: ``builds.*.new``, ``*`` matching one element.

It joins the router as a master does (``RouterLink``) and follows the stream
with the masters' own code (``StreamFollower``, ``StreamReader``), so what it
prints is what every master delivers, holes replayed and skips reported.
"""

import json
import sys

from buildbot_mq_ordered.cli.routerargs import add_router_args
from buildbot_mq_ordered.cli.routerargs import check_router_args

ABBREVIATE = 100   # characters of data shown without --json


def add_parser(sub):
    p = sub.add_parser('tail', help="print the stream's messages in order, then live")
    add_router_args(p)
    start = p.add_mutually_exclusive_group()
    start.add_argument('--from', dest='from_pos', metavar='POS', type=int,
                       help="start at this stream position (the oldest retained, if older)")
    start.add_argument('--last', metavar='N', type=int,
                       help="start with the last N messages (default: only new ones)")
    p.add_argument('--filter', metavar='KEY',
                   help="only routing keys matching this pattern, e.g. 'builds.*.new'")
    p.add_argument('--json', action='store_true',
                   help="one JSON object per line, data in full")
    p.set_defaults(run=run)


def check_args(args):
    errors = check_router_args(args)
    if args.from_pos is not None and args.from_pos < 1:
        errors.append(f"--from must be a position (1 or more), not {args.from_pos}")
    if args.last is not None and args.last < 0:
        errors.append(f"--last must be 0 or more, not {args.last}")
    return errors


def parse_filter(text):
    """'builds.*.new' -> ('builds', None, 'new'), as Buildbot's filters."""
    if text is None:
        return None
    return tuple(None if part == '*' else part for part in text.split('.'))


def start_at(args):
    """The follower's start(first_pos, head), from --from / --last."""
    if args.from_pos is not None:
        return lambda first_pos, head: max(args.from_pos, first_pos)
    last = args.last or 0
    return lambda first_pos, head: max(head - last + 1, first_pos)


def line(entry, as_json):
    """One output line for a stream entry [pos, seq, key, raw data, term]."""
    from buildbot_mq_ordered import wire
    pos, seq, key, raw, *term = entry[:5]
    try:
        data = wire.decode_data(raw)
    except (ValueError, TypeError) as e:
        data = f"<undecodable: {e}>"
    if as_json:
        return json.dumps({'pos': pos, 'seq': seq, 'key': list(key), 'data': data,
                           'term': term[0] if term else None},
                          default=str, sort_keys=True)
    text = json.dumps(data, default=str, sort_keys=True)
    if len(text) > ABBREVIATE:
        text = text[:ABBREVIATE - 3] + '...'
    return f"{pos:>8} {seq:>6}  {'.'.join(key)}  {text}"


class Tail:
    """Follows the stream and prints; the I/O around the follower."""

    def __init__(self, args, reactor, out=sys.stdout):
        from buildbot.util import tuplematch

        from buildbot_mq_ordered.master.follower import StreamFollower
        from buildbot_mq_ordered.master.streamreader import StreamReader
        self.args = args
        self.reactor = reactor
        self.out = out
        self.match = tuplematch.matchTuple
        self.filter = parse_filter(args.filter)
        self.follower = StreamFollower(start=start_at(args))
        self.reader = StreamReader(self.follower, self.print_entries, self.later,
                                   self.move_on)
        self.link = None

    def print_entries(self, entries):
        for e in entries:
            if self.filter is None or self.match(tuple(e[2]), self.filter):
                self.out.write(line(e, self.args.json) + '\n')
        self.out.flush()

    def later(self, delay, f):
        self.reactor.callLater(delay, f)

    def move_on(self):
        if self.link is not None:
            self.link.move_on()

    def start(self):
        from buildbot_mq_ordered.master import config
        from buildbot_mq_ordered.master.link import RouterLink
        from buildbot_mq_ordered.util.backoff import Backoff
        opts = {'authid': self.args.authid, 'secret_file': self.args.secret_file,
                'secret': None}
        d = config.authentication(opts, None)

        def connect(authentication):
            self.link = RouterLink(self.args.router, self.args.realm, self.joined,
                                   self.reader.leave, Backoff(0.5, 1.5, 10.0, jitter=0.1),
                                   authentication=authentication,
                                   ca_file=self.args.ca_file, authid=self.args.authid,
                                   reactor=self.reactor)
            return self.link.start()
        return d.addCallback(connect)

    def joined(self, session):
        return self.reader.join(session, lambda: self.link.session is session)


def run(args):
    errors = check_args(args)
    if errors:
        for e in errors:
            print(f"buildbot-mq-ordered tail: {e}", file=sys.stderr)
        return 2
    from twisted.internet import reactor
    from twisted.python import log

    # the lines an operator reads (waiting for the router, skips) on stderr;
    # the messages alone on stdout
    log.startLogging(sys.stderr, setStdout=False)
    tail = Tail(args, reactor)
    failed = []

    def start():
        tail.start().addErrback(lambda f: (failed.append(f), log.err(f, "tail failed"),
                                           reactor.stop()))
    reactor.callWhenRunning(start)
    reactor.run()    # until Ctrl-C (SIGINT stops the reactor)
    return 1 if failed else 0
