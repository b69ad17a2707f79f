"""The WAMP session of a master: connect, retry with backoff, stay up.

Built on autobahn's ``Component`` and its retry settings. A Component is
"done" when its session leaves cleanly (a router shutting down says goodbye),
which for a master is just another lost connection: ``RouterLink`` starts it
again until ``stop()`` is called. Nothing here ever stops the master.
"""

from urllib.parse import urlparse

import txaio
from autobahn.twisted.component import Component
from twisted.internet import defer
from twisted.internet import reactor as default_reactor
from twisted.python import log

from buildbot_mq_ordered import nodelay

# the master's WebSocket connection: no Nagle (see nodelay.py)
nodelay.install()


def transport_config(url, serializers, retry, ca_file=None):
    parsed = urlparse(url)
    secure = parsed.scheme == 'wss'
    endpoint = {
        'type': 'tcp',
        'host': parsed.hostname,
        'port': parsed.port or (443 if secure else 80),
    }
    if secure:
        from twisted.internet.ssl import optionsForClientTLS, Certificate
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


REFUSED = ('wamp.error.not_authorized', 'wamp.error.authentication_failed',
           'wamp.error.no_auth_method', 'wamp.error.authorization_failed',
           'wamp.error.no_such_realm', 'wamp.error.no_such_role')


# a connection attempt under way when the master stops ends within this
STOP_TIMEOUT = 15


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


class RouterLink:
    """Keeps one session joined to the router; calls back on join and leave.

    ``on_join(session)`` may return a Deferred; ``on_leave()`` is called once
    per joined session that ended.
    """

    def __init__(self, url, realm, on_join, on_leave, retry, authentication=None,
                 ca_file=None, serializers=('msgpack',), reactor=None, authid=None):
        self.url = url
        self.realm = realm
        self._on_join = on_join
        self._on_leave = on_leave
        self._retry = retry
        self._authentication = authentication or {}
        self._ca_file = ca_file
        self._serializers = list(serializers)
        self._reactor = reactor or default_reactor
        self._component = None
        self._running = None      # Deferred of the keep-alive loop
        self._stopping = False
        self._authid = authid
        self._refused = False     # one error per run of refused attempts
        self._transports_open = 0
        self._all_closed = []     # Deferreds waiting for no open transport
        self.session = None

    def start(self):
        self._stopping = False
        self._running = self._keep_running()
        return self._running

    @defer.inlineCallbacks
    def _keep_running(self):
        while not self._stopping:
            self._component = Component(
                transports=[transport_config(self.url, self._serializers, self._retry,
                                             self._ca_file)],
                realm=self.realm, authentication=self._authentication,
                is_fatal=lambda error: self._stopping)
            self._component.on('join', self._joined)
            self._component.on('leave', self._left)
            self._component.on('connect', self._connected)
            self._component.on('disconnect', self._disconnected)
            try:
                yield self._component.start(self._reactor)
            except Exception as e:
                if not self._stopping:
                    log.msg(f"ordered-wamp: router connection ended ({e}); restarting")
            self._component = None
            if not self._stopping:
                # a clean goodbye (router shutting down): back off a little, then retry
                d = defer.Deferred()
                self._reactor.callLater(self._retry.get('initial_retry_delay', 1), d.callback, None)
                yield d

    def _connected(self, session, transport):
        self._transports_open += 1

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
        self._refused = False
        log.msg(f"ordered-wamp: joined realm '{self.realm}' at {self.url}")
        d = defer.maybeDeferred(self._on_join, session)

        def failed(f):
            if self.session is session and not self._stopping:
                log.msg(f"ordered-wamp: setting up the session failed ({f.getErrorMessage()});"
                        " reconnecting")
                session.disconnect()
        d.addErrback(failed)
        return None

    def _left(self, session, details):
        if self.session is None and details.reason in REFUSED and not self._stopping:
            # never joined: the router refused us
            if not self._refused:
                self._refused = True
                who = f"as '{self._authid}'" if self._authid else "anonymously"
                log.err(RuntimeError(
                    f"ordered-wamp: the router at {self.url} refused to let this master "
                    f"join realm '{self.realm}' {who} ({details.reason}): check "
                    "c['mq']['authid'] and its secret; retrying with backoff"))
            return
        if self.session is not session:
            return
        self.session = None
        if not self._stopping:
            log.msg(f"ordered-wamp: left the router ({details.reason}); reconnecting")
        self._on_leave()

    @defer.inlineCallbacks
    def stop(self):
        self._stopping = True
        comp = self._component
        if comp is not None:
            session = comp._session
            if session is not None and session.is_attached():
                yield comp.stop()   # leave; the Component is then done
            elif comp._delay_f is not None:
                delay = comp._delay_f
                yield comp.stop()   # cancels the retry delay; done
                self._cancel_timer_of(delay)
            # else a connection attempt is under way: Component.stop() would
            # end the Component but not the attempt, which then retries, and
            # closing its transport mid-handshake makes autobahn fail on its
            # reply. Let the attempt run out instead: is_fatal() now says no
            # more retries, and _joined leaves at once if it succeeds.
        if self._running is not None:
            yield _bounded(self._running, STOP_TIMEOUT, self._reactor)
        yield self._wait_closed()

    def _cancel_timer_of(self, deferred):
        # txaio.sleep() has no canceller: cancelling the retry delay leaves its
        # timer pending (harmless, but a stopped master should leave nothing)
        for call in self._reactor.getDelayedCalls():
            if getattr(call.func, '__self__', None) is deferred:
                call.cancel()

def set_log_level(level):
    txaio.set_global_log_level(level)

