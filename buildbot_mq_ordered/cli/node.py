"""``buildbot-mq-ordered node``: one load-generating master in its own process.

Used by the demo, the benchmark and the multi-process tests. It starts an
MQ (``ordered-wamp``, or Buildbot's stock ``wamp`` for comparison), consumes
every ``('load', ...)`` message, prints ``READY`` and waits for ``GO`` on
stdin, produces its share, and ends when it delivered ``--expect`` messages
(or at ``--timeout``), writing what it delivered, in order, as JSON.

Progress lines on stdout: ``PROGRESS <delivered> <produced>``.
"""



import sys


def add_parser(sub):
    p = sub.add_parser('node', help="(internal) one load-generating master process")
    p.add_argument('--router-url', required=True)
    p.add_argument('--realm', default='buildbot')
    p.add_argument('--mq', default='ordered-wamp', choices=['ordered-wamp', 'wamp'])
    p.add_argument('--name', required=True)
    p.add_argument('--messages', type=int, default=1000, help="messages to produce")
    p.add_argument('--rate', type=float, default=0, help="messages/s to offer (0: flat out)")
    p.add_argument('--payload', type=int, default=100, help="payload bytes per message")
    p.add_argument('--shared-keys', type=int, default=10,
                   help="routing keys shared by all nodes (the rest are private)")
    p.add_argument('--distinct-keys', type=int, default=0,
                   help="cycle through this many distinct routing keys instead")
    p.add_argument('--expect', type=int, required=True,
                   help="messages to deliver before finishing (all nodes' total)")
    p.add_argument('--timeout', type=float, default=120)
    p.add_argument('--out', required=True, help="JSON file for the results")
    p.add_argument('--no-wait', action='store_true', help="do not wait for GO on stdin")
    p.set_defaults(run=run)


def run(args):
    from twisted.internet import reactor
    from twisted.python import log
    from buildbot_mq_ordered.cli.loadnode import LoadNode
    log.startLogging(sys.stderr, setStdout=False)
    node = LoadNode(args, reactor)
    reactor.callWhenRunning(node.start)
    reactor.run()
    return node.exit_code

