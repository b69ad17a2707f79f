"""``buildbot-mq-ordered node``: one load-generating master in its own process.

Used by the demo, the benchmark and the multi-process tests. It starts an
MQ (``ordered-wamp``, or Buildbot's stock ``wamp`` for comparison), consumes
every ``('load', ...)`` message, prints ``READY`` and waits for ``GO`` on
stdin, produces its share, and ends when it delivered ``--expect`` messages
(or at ``--timeout``), writing what it delivered, in order, as JSON.

stdout: ``READY``, ``PROGRESS <delivered> <produced>`` (twice a second),
``PRODUCED <n>`` (production over), ``DONE``.
stdin: ``GO``, ``EXPECT <n>`` (the total to deliver, when ``--expect 0``);
end of file (the driver is gone) stops the node.
"""

import sys


def add_parser(sub):
    p = sub.add_parser('node', help="(internal) one load-generating master process")
    p.add_argument('--router-url', required=True,
                   help="the router's URL; ordered-wamp: several, comma-separated")
    p.add_argument('--realm', default='buildbot')
    p.add_argument('--mq', default='ordered-wamp', choices=['ordered-wamp', 'wamp'])
    p.add_argument('--name', required=True)
    p.add_argument('--messages', type=int, default=1000,
                   help="messages to produce (at most)")
    p.add_argument('--duration', type=float, default=0,
                   help="stop producing after this many seconds (0: no limit)")
    p.add_argument('--rate', type=float, default=0, help="messages/s to offer (0: flat out)")
    p.add_argument('--window', type=int, default=2000,
                   help="flat out: at most this many own messages in flight")
    p.add_argument('--payload', type=int, default=100, help="payload bytes per message")
    p.add_argument('--shared-keys', type=int, default=10,
                   help="routing keys shared by all nodes (the rest are private)")
    p.add_argument('--distinct-keys', type=int, default=0,
                   help="all nodes together cycle through this many distinct routing keys")
    p.add_argument('--index', type=int, default=0, help="this node's index (0-based)")
    p.add_argument('--nodes', type=int, default=1, help="how many nodes produce")
    p.add_argument('--expect', type=int, required=True,
                   help="messages to deliver before finishing (all nodes' total); "
                        "0: wait for 'EXPECT <n>' on stdin")
    p.add_argument('--no-record', action='store_true',
                   help="write only the constant-size summary, not every delivery")
    p.add_argument('--timeout', type=float, default=120)
    p.add_argument('--out', required=True, help="JSON file for the results")
    p.add_argument('--no-wait', action='store_true', help="do not wait for GO on stdin")
    p.set_defaults(run=run)


def run(args):
    from twisted.internet import reactor
    from twisted.python import log

    from buildbot_mq_ordered.load.loadnode import LoadNode
    log.startLogging(sys.stderr, setStdout=False)
    node = LoadNode(args, reactor)
    reactor.callWhenRunning(node.start)
    reactor.run()
    return node.exit_code
