"""The MQ a load node runs: ``ordered-wamp``, or Buildbot's stock ``wamp``
(with its own ``WampConnector``, as in a master) for comparison, under a
parent service the node stops at the end."""

import zlib

from twisted.application import service as ts
from twisted.internet import defer


class _Config:
    def __init__(self, mq):
        self.mq = mq


@defer.inlineCallbacks
def start_mq(args, on_lost):
    """(parent service, MQ), started. ``on_lost()``: the stock MQ's master
    was stopped by its connector (a lost router connection)."""
    parent = ts.MultiService()
    if args.mq == 'ordered-wamp':
        mq = yield _ordered_wamp(args, parent)
    else:
        mq = yield _stock_wamp(args, parent, on_lost)
    yield defer.maybeDeferred(parent.startService)
    return parent, mq


@defer.inlineCallbacks
def _ordered_wamp(a, parent):
    from buildbot_mq_ordered.master.mq import OrderedWampMQ
    mq = OrderedWampMQ()
    mq.setName(a.name)   # the name its reports give (no Buildbot master here)
    urls = a.router_url.split(',')
    cfg = _Config({'type': 'ordered-wamp',
                   'router_url': urls[0] if len(urls) == 1 else urls,
                   'realm': a.realm, 'initial_retry_delay': 0.2,
                   'max_retry_delay': 2.0, 'shutdown_timeout': 30})
    yield mq.setServiceParent(parent)
    yield mq.reconfigServiceWithBuildbotConfig(cfg)
    return mq


@defer.inlineCallbacks
def _stock_wamp(a, parent, on_lost):
    from buildbot.mq.wamp import WampMQ
    from buildbot.util import service
    from buildbot.wamp.connector import WampConnector

    class Master(service.MasterService):
        """The stand-in Buildbot master the stock MQ and its connector need."""

        masterid = zlib.crc32(a.name.encode())  # the connector publishes with it

        def stopService(self):
            # the connector calls this on a lost router connection
            # ("Guru meditation"), as the node's own stop does
            on_lost()
            return super().stopService()

    master = Master()
    master.config = _Config({'type': 'wamp', 'router_url': a.router_url,
                             'realm': a.realm, 'wamp_debug_level': 'error'})
    master.wamp = WampConnector()
    yield master.wamp.setServiceParent(master)
    mq = WampMQ()
    yield mq.setServiceParent(master)
    yield master.setServiceParent(parent)
    yield master.wamp.reconfigServiceWithBuildbotConfig(master.config)
    return mq
