"""The WAMP session of a master: connect, retry with backoff, stay up.

Built on autobahn's ``Component`` and its retry settings. A Component is
"done" when its session leaves cleanly (a router shutting down says goodbye),
which for a master is just another lost connection: ``RouterLink`` starts it
again until ``stop()`` is called. Nothing here ever stops the master.

What the operator reads is said here, not by autobahn: a router that
refuses the master is one error naming the reason and what to check; a
router that cannot be reached is a line at start and then at growing
intervals.
"""

import random
from urllib.parse import urlparse

from autobahn.twisted.component import Component
from autobahn.wamp.exception import ApplicationError
from twisted.internet import defer
from twisted.internet import reactor as default_reactor
from twisted.logger import Logger
import txaio
from txaio.interfaces import log_levels

from buildbot_mq_ordered import wire
from buildbot_mq_ordered.util import nodelay

log = Logger(namespace='ordered-wamp')


def transport_config(url, serializers, retry, ca_file=None):
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
    cfg = {'type': 'websocket', 'url': url, 'endpoint': endpoint,
           'serializers': serializers,
           'options': {'autoPingInterval': 10, 'autoPingTimeout': 5,
                       'openHandshakeTimeout': 10, 'closeHandshakeTimeout': 2}}
    cfg.update(retry)
    return cfg


AUTH_HINT = ("check c['mq']['authid'] and its secret against the router's "
             "--secret-file")
# why a router refuses a session, and what to check
HINTS = {
    'wamp.error.no_such_realm':
        "check c['mq']['realm'] against the router's --realm (default 'buildbot')",
    'wamp.error.not_authorized': AUTH_HINT,
    'wamp.error.authentication_failed': AUTH_HINT,
    'wamp.error.authorization_failed': AUTH_HINT,
    'wamp.error.no_auth_method':
        "the router accepts only known masters: set c['mq']['authid'] and its "
        "secret (one line of the router's --secret-file)",
    'wamp.error.no_such_role':
        "the router's configuration gives this authid a role its realm does not "
        "define: check the router's configuration",
}
REFUSED = tuple(HINTS)

# a connection attempt under way when the master stops ends within this
STOP_TIMEOUT = 15
# "still waiting" reminders: the interval doubles from the first up to the last
FIRST_REMINDER = 10
MAX_REMINDER = 600


def _bounded(d, timeout, reactor):
    """d, or None after timeout seconds, whichever comes first."""
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


def _duration(seconds):
    seconds = int(seconds)
    return f"{seconds // 60}m{seconds % 60:02d}s" if seconds >= 60 else f"{seconds}s"


def _reason(exc):
    """One line for a failed connection attempt."""
    if isinstance(exc, ApplicationError):
        return exc.error_message()   # "wamp.error.no_such_realm: no realm ..."
    # e.g. Twisted's "Connection was refused by other side: 111: Connection refused."
    return ' '.join((str(exc) or type(exc).__name__).split()).rstrip('.')


class _Component(Component):
    """autobahn's Component, its connection chatter left to ``RouterLink``
    unless autobahn's own log level (``wamp_debug_level``) asks for more."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.log = txaio.make_logger()
        if log_levels.index(txaio.get_global_log_level()) <= log_levels.index('error'):
            self.log.set_log_level('critical')


class RouterLink:
    """Keeps one session joined to a router; calls back on join and leave.

    ``urls`` is one router URL or a list of them: after a failed attempt or
    a lost session the next one is tried, with backoff (the ``retry``
    settings of autobahn's Component, applied here: each Component makes one
    attempt, so that no autobahn timer outlives ``stop()``).

    ``on_join(session)`` may return a Deferred; ``on_leave()`` is called once
    per joined session that ended. ``on_shutdown()``, if given, is called
    when the reactor begins to shut down before this link ever joined (so a
    start-up that waits for the router can give up and let the master stop).
    """

    def __init__(self, urls, realm, on_join, on_leave, retry, authentication=None,
                 ca_file=None, serializers=('msgpack',), reactor=None, authid=None,
                 on_shutdown=None):
        self.urls = [urls] if isinstance(urls, str) else list(urls)
        self._index = 0           # of the router tried now
        self.realm = realm
        self._on_join = on_join
        self._on_leave = on_leave
        self._on_shutdown = on_shutdown
        self._retry = retry
        self._authentication = authentication or {}
        self._ca_file = ca_file
        self._serializers = list(serializers)
        self._reactor = reactor or default_reactor
        self._component = None
        self._running = None      # Deferred of the keep-alive loop
        self._stopping = False
        self._stopped = None      # Deferred of the stop in progress
        self._shutdown_trigger = None
        self._authid = authid
        self._refused = None      # the refusal already reported (one error per run)
        self._waiting_since = None  # reactor time of the first failed attempt
        self._next_reminder = 0
        self._joins = 0           # sessions joined so far
        self._transports_open = 0
        self._all_closed = []     # Deferreds waiting for no open transport
        self._pause = self._pause_call = None  # between attempts
        self.attempts = 0         # connection attempts made
        self._setup_failed = False  # the owner's on_join failed on this session
        self.session = None

    @property
    def url(self):
        """The router tried (or joined) now."""
        return self.urls[self._index]

    @property
    def joins(self):
        """Sessions joined so far (reports count reconnects with it)."""
        return self._joins

    @property
    def ever_joined(self):
        return self._joins > 0

    @property
    def refused(self):
        """The router's reason while it refuses this master, else None."""
        return self._refused

    @property
    def _who(self):
        return f"as '{self._authid}'" if self._authid else "anonymously"

    def start(self):
        self._stopping = False
        self._stopped = None
        log.info("ordered-wamp: connecting to the router at {url}, realm '{realm}'",
                 url=' or '.join(self.urls), realm=self.realm)
        self._shutdown_trigger = self._reactor.addSystemEventTrigger(
            'before', 'shutdown', self._reactor_stopping)
        self._running = self._keep_running()
        return self._running

    @defer.inlineCallbacks
    def _keep_running(self):
        failures = 0    # attempts in a row that did not join
        while not self._stopping:
            self.attempts += 1
            self._component = _Component(
                transports=[transport_config(self.url, self._serializers,
                                             dict(self._retry, max_retries=0),
                                             self._ca_file)],
                realm=self.realm, authentication=self._authentication)
            self._component.on('join', self._joined)
            self._component.on('leave', self._left)
            self._component.on('connect', self._connected)
            self._component.on('disconnect', self._disconnected)
            self._component.on('connectfailure', self._connect_failed)
            joins = self._joins
            self._setup_failed = False
            try:
                yield self._component.start(self._reactor)
            except Exception:
                pass   # a failed attempt: _connect_failed said what the operator needs
            self._component = None
            if self._stopping:
                break
            served = self._joins > joins and not self._setup_failed
            failures = 0 if served else failures + 1
            self._index = (self._index + 1) % len(self.urls)
            # a lost session (or a router saying goodbye) is retried after the
            # first delay; failed attempts after growing ones
            self._pause = defer.Deferred()
            self._pause_call = self._reactor.callLater(
                self._delay(failures), self._pause.callback, None)
            yield self._pause

    def _delay(self, failures):
        r = self._retry
        delay = min(r.get('initial_retry_delay', 1.0) *
                    r.get('retry_delay_growth', 1.5) ** max(failures - 1, 0),
                    r.get('max_retry_delay', 300.0))
        return max(0.0, random.normalvariate(delay, delay * r.get('retry_delay_jitter', 0.1)))

    # -- what the operator reads ---------------------------------------------

    def _connect_failed(self, component, exc):
        if self._stopping or self.session is not None:
            return  # the end of a joined session: _left reports it
        if isinstance(exc, ApplicationError) and exc.error.startswith('wamp.close.'):
            return  # likewise, whichever of the two autobahn reports first
        now = self._reactor.seconds()
        if self._waiting_since is None:
            self._waiting_since = now
            self._next_reminder = FIRST_REMINDER
        elapsed = now - self._waiting_since
        refused = isinstance(exc, ApplicationError) and exc.error in HINTS
        if refused and self._refused != exc.error:
            self._refused = exc.error
            log.error(
                "ordered-wamp: the router at {url} refused to let this master join "
                "realm '{realm}' {who}: {reason}. Fix: {hint}. Retrying with backoff.",
                url=self.url, realm=self.realm, who=self._who, reason=_reason(exc),
                hint=HINTS[exc.error])
        elif elapsed == 0:
            log.info(
                "ordered-wamp: waiting for the router at {url}, realm '{realm}' "
                "({reason}); retrying with backoff. {meanwhile}",
                url=self.url, realm=self.realm, reason=_reason(exc),
                meanwhile=self._meanwhile())
        elif elapsed >= self._next_reminder:
            self._next_reminder = elapsed + min(max(elapsed, FIRST_REMINDER), MAX_REMINDER)
            log.info(
                "ordered-wamp: still not joined realm '{realm}' at {url} after "
                "{elapsed} ({reason}). {meanwhile}",
                url=self.url, realm=self.realm, elapsed=_duration(elapsed),
                reason=_reason(exc), meanwhile=self._meanwhile())

    def _meanwhile(self):
        if self.ever_joined:
            return "Meanwhile produced messages wait in the outbox."
        return "Buildbot's start-up waits until the master has joined."

    # -- the session -----------------------------------------------------------

    def _connected(self, session, transport):
        self._transports_open += 1
        nodelay.set_on(transport)   # see nodelay.py

    def _disconnected(self, session, was_clean):
        self._transports_open = max(0, self._transports_open - 1)
        if not self._transports_open:
            waiters, self._all_closed = self._all_closed, []
            for d in waiters:
                d.callback(None)

    def _wait_closed(self, timeout=5):
        """Until the last transport is closed, not just the session (bounded)."""
        if not self._transports_open:
            return defer.succeed(None)
        d = defer.Deferred()
        self._all_closed.append(d)
        return _bounded(d, timeout, self._reactor)

    def _joined(self, session, details):
        if self._stopping:
            session.leave()
            return None
        self.session = session
        self._joins += 1
        waited = ''
        if self._waiting_since is not None:
            waited = f" after waiting {_duration(self._reactor.seconds() - self._waiting_since)}"
        self._refused = None
        self._waiting_since = None
        log.info("ordered-wamp: joined realm '{realm}' at {url}{waited}",
                 realm=self.realm, url=self.url, waited=waited)
        d = defer.maybeDeferred(self._on_join, session)

        def failed(f):
            if self.session is session and not self._stopping:
                if f.check(ApplicationError) and f.value.error == wire.NO_SEQUENCER:
                    self.move_on()
                    return
                self._setup_failed = True
                log.info("ordered-wamp: setting up the session failed ({why}); "
                         "reconnecting", why=f.getErrorMessage())
                session.disconnect()
        d.addErrback(failed)
        return None

    def _left(self, session, details):
        if self.session is not session:
            return  # never joined (refused: reported by _connect_failed)
        self.session = None
        if not self._stopping:
            log.info("ordered-wamp: left the router ({reason}); reconnecting",
                     reason=details.reason)
        self._on_leave()

    def move_on(self):
        """The router joined has no leading sequencer (a call said
        ``NO_SEQUENCER``): leave it for the next, with backoff."""
        session = self.session
        if session is None or self._stopping:
            return
        self._setup_failed = True
        log.info("ordered-wamp: the router at {url} has no sequencer leading "
                 "(a standby router, or its sequencer stopped); {next}",
                 url=self.url, next=self._next())
        session.disconnect()

    def _next(self):
        if len(self.urls) > 1:
            return f"trying {self.urls[(self._index + 1) % len(self.urls)]} next"
        return "retrying with backoff"

    # -- stopping --------------------------------------------------------------

    def _reactor_stopping(self):
        self._shutdown_trigger = None
        if not self.ever_joined and self._on_shutdown is not None:
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
        if self._pause_call is not None and self._pause_call.active():
            # between two Components (after a goodbye): end the pause now
            self._pause_call.cancel()
            self._pause.callback(None)
        if self._component is not None and self.session is not None:
            yield self._component.stop()   # leave; the Component is then done
        # else a connection attempt is under way: Component.stop() would end
        # the Component but not the attempt, and closing its transport
        # mid-handshake makes autobahn fail on its reply. Let the attempt run
        # out instead (each Component makes one): _joined leaves at once if
        # it succeeds.
        if self._running is not None:
            yield _bounded(self._running, STOP_TIMEOUT, self._reactor)
        yield self._wait_closed()


def set_log_level(level):
    txaio.set_global_log_level(level)
