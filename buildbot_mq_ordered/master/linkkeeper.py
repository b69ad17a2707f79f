"""``LinkKeeper``: the MQ's ``RouterLink``, one at a time."""

from twisted.internet import defer
from twisted.python import log

from buildbot_mq_ordered.master import config as mqconfig
from buildbot_mq_ordered.master.link import RouterLink


class LinkKeeper:
    """The MQ's link to the router: made from the MQ's options, started,
    restarted (a reconfig changed a connection key) and stopped one at a
    time, under a lock. Once the MQ stops (``stopping``), a start or a
    restart waiting for the lock does nothing.

    OrderedWampMQ owns it; the link it makes calls the MQ back on join,
    leave, and a reactor shutdown before any join. ``link_class`` is
    ``RouterLink`` unless a test's."""

    def __init__(self, mq, on_join, on_leave, on_shutdown, clock=None, link_class=None):
        self.mq = mq              # its options, running, and master (for secrets)
        self.link = None
        self.stopping = False
        self._callbacks = (on_join, on_leave, on_shutdown)
        self._clock = clock
        self._link_class = link_class or RouterLink
        self._lock = defer.DeferredLock()

    @property
    def busy(self):
        """A start, restart or stop is under way or waiting."""
        return self._lock.locked

    def start(self):
        self.stopping = False
        return self._lock.run(self._start)

    def restart(self):
        return self._lock.run(self._restart)

    def stop(self):
        """Stop the link (set ``stopping`` first: no link is started after)."""
        return self._lock.run(self._stop)

    def where(self):
        """The router joined or tried now, or all of them, for what is logged."""
        if self.link is not None:
            return self.link.url
        url = self.mq.options['router_url']
        return url if isinstance(url, str) else ' or '.join(url)

    def holds(self, session):
        """The session is the link's, still joined."""
        return self.link is not None and self.link.session is session

    def move_on(self):
        if self.link is not None:
            self.link.move_on()

    @defer.inlineCallbacks
    def _start(self):
        if self.stopping or not self.mq.running:
            return
        opts = self.mq.options
        authentication = yield mqconfig.authentication(opts, self.mq)
        if self.stopping:
            return
        on_join, on_leave, on_shutdown = self._callbacks
        self.link = self._link_class(
            opts['router_url'], opts['realm'], on_join, on_leave,
            mqconfig.retry_backoff(opts), authentication=authentication,
            ca_file=opts['ca_file'], authid=opts['authid'], on_shutdown=on_shutdown,
            reactor=self._clock)
        self.link.start().addErrback(log.err, "ordered-wamp: router link failed")

    @defer.inlineCallbacks
    def _restart(self):
        if self.stopping or not self.mq.running:
            return
        yield self._stop()
        yield self._start()

    @defer.inlineCallbacks
    def _stop(self):
        link, self.link = self.link, None
        if link is not None:
            yield link.stop()
