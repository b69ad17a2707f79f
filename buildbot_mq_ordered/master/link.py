"""The WAMP session of a master: connect, retry with backoff, stay up.

Built on autobahn's ``Component``, one per connection attempt. A Component
is "done" when its session leaves cleanly (a router shutting down says
goodbye), which for a master is just another lost connection: ``RouterLink``
starts another until ``stop()`` is called. Nothing here ever stops the
master. Which router next, after which delay, and every line the operator
reads are the ``ConnectPolicy``'s.
"""

from urllib.parse import urlparse

from autobahn.twisted.component import Component
from autobahn.wamp.exception import ApplicationError
from twisted.internet import defer
from twisted.internet import reactor as default_reactor
from twisted.internet import task
from twisted.logger import Logger
import txaio
from txaio.interfaces import log_levels

from buildbot.util import Notifier
from buildbot_mq_ordered import wire
from buildbot_mq_ordered.master.connectpolicy import ConnectPolicy
from buildbot_mq_ordered.util import nodelay

log = Logger(namespace='ordered-wamp')

# a connection attempt under way when the master stops ends within this
STOP_TIMEOUT = 15


# A router that stops answering (a frozen host, a dead link that nothing
# reports) is left after at most PING_EVERY + PING_TIMEOUT seconds, so that a
# standby that took over meanwhile gets this master within its lease (3 s)
# plus a few seconds. A master whose own reactor is blocked longer than
# PING_TIMEOUT may leave a healthy router: it reconnects, nothing is lost.
PING_EVERY = 1
PING_TIMEOUT = 3


def transport_config(url, serializers, ca_file=None):
    parsed = urlparse(url)
    secure = parsed.scheme == 'wss'
    endpoint = {
        'type': 'tcp',
        'host': parsed.hostname,
        'port': parsed.port or (443 if secure else 80),
    }
    if secure:
        from twisted.internet.ssl import Certificate
        from twisted.internet.ssl import optionsForClientTLS
        trust = None
        if ca_file:
            with open(ca_file, 'rb') as f:
                trust = Certificate.loadPEM(f.read())
        endpoint['tls'] = optionsForClientTLS(parsed.hostname, trustRoot=trust)
    # one attempt per Component: the retries are RouterLink's
    return {'type': 'websocket', 'url': url, 'endpoint': endpoint,
            'serializers': serializers, 'max_retries': 0,
            'options': {'autoPingInterval': PING_EVERY, 'autoPingTimeout': PING_TIMEOUT,
                        'openHandshakeTimeout': 10, 'closeHandshakeTimeout': 2}}


def _bounded(d, timeout, reactor):
    """d, or None after timeout seconds, whichever comes first. Unlike
    addTimeout, d itself is not cancelled (the link's loop runs out)."""
    result = defer.Deferred()
    timer = reactor.callLater(timeout, lambda: result.called or result.callback(None))

    def done(r):
        if timer.active():
            timer.cancel()
        if not result.called:
            result.callback(None)
        return r
    d.addBoth(done)
    return result


class _Component(Component):
    """autobahn's Component, its connection chatter left to ``RouterLink``
    unless autobahn's own log level (``wamp_debug_level``) asks for more."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.log = txaio.make_logger()
        if log_levels.index(txaio.get_global_log_level()) <= log_levels.index('error'):
            self.log.set_log_level('critical')


def _say(say):
    """Log a line of the ConnectPolicy's."""
    if say is not None:
        getattr(log, say.level)(say.format, **say.fields)


class Transports:
    """The open transports of a ``RouterLink``'s Components: TCP_NODELAY on
    each (see nodelay.py), and a wait until none is open, which a stopped
    link does so that it leaves nothing behind in the reactor."""

    def __init__(self, reactor):
        self.open = 0
        self._reactor = reactor
        self._all_closed = Notifier()

    def connected(self, session, transport):
        self.open += 1
        nodelay.set_on(transport)

    def disconnected(self, session, was_clean):
        self.open = max(0, self.open - 1)
        if not self.open:
            self._all_closed.notify(None)

    def all_closed(self, timeout=5):
        """Until the last transport is closed, not just the session (bounded)."""
        if not self.open:
            return defer.succeed(None)
        return self._all_closed.wait().addTimeout(
            timeout, self._reactor, onTimeoutCancel=lambda result, timeout: None)


class RouterLink:
    """Keeps one session joined to a router; calls back on join and leave.

    ``urls`` is one router URL or a list of them: after a failed attempt or
    a lost session the next one is tried, after ``backoff(failures in a
    row)`` seconds. Each attempt is one autobahn Component, so that no
    autobahn timer outlives ``stop()``.

    ``on_join(session)`` may return a Deferred; ``on_leave()`` is called once
    per joined session that ended. ``on_shutdown()``, if given, is called
    when the reactor begins to shut down before this link ever joined (so a
    start-up that waits for the router can give up and let the master stop).
    The MQ's ``LinkKeeper`` makes one per connection settings; the ``tail``
    and ``status`` commands make their own.
    """

    def __init__(self, urls, realm, on_join, on_leave, backoff, authentication=None,
                 ca_file=None, serializers=('msgpack',), reactor=None, authid=None,
                 on_shutdown=None):
        self.policy = ConnectPolicy(urls, realm, backoff, authid)
        self._on_join = on_join
        self._on_leave = on_leave
        self._on_shutdown = on_shutdown
        self._authentication = authentication or {}
        self._ca_file = ca_file
        self._serializers = list(serializers)
        self._reactor = reactor or default_reactor
        self._component = None
        self._running = None      # Deferred of the keep-alive loop
        self._stopping = False
        self._stopped = None      # Deferred of the stop in progress
        self._shutdown_trigger = None
        self._transports = Transports(self._reactor)
        self._pause = None        # between attempts
        self.session = None

    url = property(lambda self: self.policy.url, doc="The router tried (or joined) now.")
    joins = property(lambda self: self.policy.joins,
                     doc="Sessions joined so far (reports count reconnects with it).")
    attempts = property(lambda self: self.policy.attempts,
                        doc="Connection attempts made so far.")

    def start(self):
        self._stopping = False
        self._stopped = None
        _say(self.policy.connecting())
        self._shutdown_trigger = self._reactor.addSystemEventTrigger(
            'before', 'shutdown', self._reactor_stopping)
        self._running = self._keep_running()
        return self._running

    @defer.inlineCallbacks
    def _keep_running(self):
        while not self._stopping:
            self.policy.attempt()
            self._component = _Component(
                transports=[transport_config(self.url, self._serializers, self._ca_file)],
                realm=self.policy.realm, authentication=self._authentication)
            self._component.on('join', self._joined)
            self._component.on('leave', self._left)
            self._component.on('connect', self._transports.connected)
            self._component.on('disconnect', self._transports.disconnected)
            self._component.on('connectfailure', self._connect_failed)
            try:
                yield self._component.start(self._reactor)
            except Exception:
                pass   # a failed attempt: _connect_failed said what the operator needs
            self._component = None
            if self._stopping:
                break
            self._pause = task.deferLater(self._reactor, self.policy.attempt_over())
            try:
                yield self._pause
            except defer.CancelledError:
                pass   # stop() ended the pause

    # -- the session -----------------------------------------------------------

    def _connect_failed(self, component, exc):
        if self._stopping or self.session is not None:
            return  # the end of a joined session: _left reports it
        _say(self.policy.failed(exc, self._reactor.seconds()))

    def _joined(self, session, details):
        if self._stopping:
            session.leave()
            return None
        self.session = session
        _say(self.policy.joined(self._reactor.seconds()))
        d = defer.maybeDeferred(self._on_join, session)

        def set_up(_):
            if self.session is session and not self._stopping:
                _say(self.policy.set_up())

        def failed(f):
            if self.session is session and not self._stopping:
                if f.check(ApplicationError) and f.value.error == wire.NO_SEQUENCER:
                    self.move_on()
                    return
                _say(self.policy.setup_failed(f.value))
                session.disconnect()
        d.addCallbacks(set_up, failed)

    def _left(self, session, details):
        if self.session is not session:
            return  # never joined (refused: reported by _connect_failed)
        self.session = None
        if not self._stopping:
            _say(self.policy.left(details.reason))
        self._on_leave()

    def move_on(self):
        """The router joined has no leading sequencer (a call said
        ``NO_SEQUENCER``): leave it for the next, with backoff."""
        session = self.session
        if session is None or self._stopping:
            return
        _say(self.policy.moving_on())
        session.disconnect()

    # -- stopping --------------------------------------------------------------

    def _reactor_stopping(self):
        self._shutdown_trigger = None
        if not self.policy.joins and self._on_shutdown is not None:
            self._on_shutdown()
        return self.stop()

    def stop(self):
        """Stop connecting and leave; fires when done (bounded), in any state."""
        if self._stopped is None:
            self._stopped = self._stop()
        d = defer.Deferred()
        self._stopped.addBoth(lambda r: (d.callback(None), r)[1])
        return d

    @defer.inlineCallbacks
    def _stop(self):
        self._stopping = True
        if self._shutdown_trigger is not None:
            self._reactor.removeSystemEventTrigger(self._shutdown_trigger)
            self._shutdown_trigger = None
        if self._pause is not None:
            self._pause.cancel()   # between two Components (after a goodbye)
        if self._component is not None and self.session is not None:
            yield self._component.stop()   # leave; the Component is then done
        # else a connection attempt is under way: Component.stop() would end the
        # Component but not the attempt, and closing its transport mid-handshake
        # makes autobahn fail on its reply. Let the attempt run out instead (each
        # Component makes one): _joined leaves at once if it succeeds.
        if self._running is not None:
            yield _bounded(self._running, STOP_TIMEOUT, self._reactor)
        yield self._transports.all_closed()


def set_log_level(level):
    txaio.set_global_log_level(level)
