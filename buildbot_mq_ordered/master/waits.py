"""What the MQ service waits for: its first join (start-up) and being idle
(stop). Waiters are Buildbot's ``Notifier``."""

from twisted.internet import defer
from twisted.internet import reactor
from twisted.logger import Logger
from twisted.python.failure import Failure

from buildbot.util import Notifier

log = Logger(namespace='ordered-wamp')


class StartGate:
    """Buildbot's start-up waits in ``startConsuming`` until the master has
    its place in the stream (its first join): a consumer is effective from
    there. The MQ waits here, opens the gate on its first placed join, gives
    up at a stop before any join (``give_up``) and lets the start-up through
    when the reactor shuts down first (``let_through``, the link's
    ``on_shutdown``). ``where()`` gives (realm, router) for what is said."""

    def __init__(self, where):
        self.open = False
        self._where = where
        self._waiting = Notifier()

    def wait(self):
        if self.open:
            return defer.succeed(None)
        return self._waiting.wait()

    def opened(self):
        self.open = True
        self._waiting.notify(None)

    def give_up(self):
        """A stop before the first join fails the waits with a clear error,
        instead of leaving them pending for good (a reactor shutting down
        goes through let_through)."""
        if self.open or not self._waiting:
            return
        realm, url = self._where()
        self._waiting.notify(Failure(RuntimeError(
            f"ordered-wamp: stopping before this master ever joined realm "
            f"'{realm}' at {url}: the consumer never became effective")))

    def let_through(self):
        """The reactor shuts down (``buildbot stop``) before this master ever
        joined: let the start-up that waits in startConsuming finish, so
        Buildbot goes on to stop the master cleanly (a failed start-up is a
        traceback in twistd.log). Nothing will be delivered: it is stopping."""
        if not self._waiting:
            return
        realm, url = self._where()
        log.info(
            "ordered-wamp: stopping before this master ever joined realm '{realm}' at "
            "{url}: Buildbot's start-up goes on without the router so that the "
            "master can stop; nothing was delivered", realm=realm, url=url)
        self.opened()


class IdleWatch:
    """Waits, bounded, until ``is_idle()``: everything produced here is
    sequenced and delivered here. The MQ's ``stopService`` waits; the
    ``StreamReader`` (after each batch of actions) and the acknowledgements
    of the ``Submitter`` call ``check``."""

    def __init__(self, is_idle, clock=None):
        self._is_idle = is_idle
        self._clock = clock or reactor
        self._waiting = Notifier()

    def check(self):
        if self._waiting and self._is_idle():
            self._waiting.notify(None)

    def wait(self, timeout):
        """Fires (with None) when idle, or after timeout seconds."""
        if self._is_idle():
            return defer.succeed(None)
        return self._waiting.wait().addTimeout(
            timeout, self._clock, onTimeoutCancel=lambda result, timeout: None)
