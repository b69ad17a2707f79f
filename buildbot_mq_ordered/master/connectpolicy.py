"""What a master's link to the router does after each event of its
connection - which router next, after which delay - and what the operator
reads about it: a router that refuses the master is one error naming the
reason and what to check; a router that cannot be reached is a line at
start and then at growing intervals. Pure: ``RouterLink`` feeds it and
carries out (and logs) what it returns.
"""

from collections import namedtuple

from autobahn.wamp.exception import ApplicationError

from buildbot_mq_ordered import wire

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

MISMATCH = ("ordered-wamp: the router at {url} speaks wire protocol {theirs}; this master "
            "speaks {ours}: they cannot work together. Upgrade the older side (see 'Protocol "
            "versions' in docs/upgrading.rst). Retrying quietly with backoff; {meanwhile}")

# "still waiting" reminders: the interval doubles from the first up to the last
FIRST_REMINDER = 10
MAX_REMINDER = 600


class Say(namedtuple('Say', 'level format fields')):
    """A line for the operator: its level ('info' or 'error'), its
    twisted.logger format and the fields it names."""
    __slots__ = ()

    @property
    def text(self):
        return self.format.format(**self.fields)


def _duration(seconds):
    seconds = int(seconds)
    return f"{seconds // 60}m{seconds % 60:02d}s" if seconds >= 60 else f"{seconds}s"


def _router_protocol(exc):
    """The router's protocol if ``exc`` says it speaks another one, else None.
    A router before 0.5.0 refuses info's keywords as malformed."""
    if not isinstance(exc, ApplicationError):
        return None
    if exc.error == wire.PROTOCOL_MISMATCH:
        theirs = wire.offered_protocol(exc.kwargs or {})
        return theirs if theirs not in (None, wire.UNVERSIONED) else (0, 0)
    if exc.error == wire.MALFORMED and 'info takes no arguments' in str(exc.error_message()):
        return wire.UNVERSIONED
    return None


def _reason(exc):
    """One line for a failed connection attempt."""
    if isinstance(exc, ApplicationError):
        return exc.error_message()   # "wamp.error.no_such_realm: no realm ..."
    # e.g. Twisted's "Connection was refused by other side: 111: Connection refused."
    return ' '.join((str(exc) or type(exc).__name__).split()).rstrip('.')


class ConnectPolicy:
    """The decisions of one ``RouterLink``: it tells of each attempt, a
    failed one (the error, at reactor time ``now``), a join, a session
    whose setup failed or that moves on, a leave, and the end of an
    attempt; it gets back the line to log (a ``Say``, or None) and, at the
    end of an attempt, the delay before the next one, which goes to the
    next URL of ``urls`` (``url``).

    A lost session is retried after ``backoff``'s first delay, attempts
    that failed in a row after growing ones."""

    def __init__(self, urls, realm, backoff, authid=None):
        self.urls = [urls] if isinstance(urls, str) else list(urls)
        self.realm = realm
        self.backoff = backoff
        self.authid = authid
        self.index = 0            # of the router tried now
        self.attempts = 0         # connection attempts made
        self.joins = 0            # sessions joined so far
        self._failures = 0        # attempts in a row that did not serve
        self._served = False      # this attempt joined and was set up
        self._refused = None      # the refusal already reported (one error per run)
        self._mismatch = None     # (url, the router's protocol) reported: quiet till set up
        self._set_ups = 0         # sessions set up (joined, and info answered)
        self._waiting_since = None  # reactor time of the first failed attempt
        self._next_reminder = 0

    @property
    def url(self):
        """The router tried (or joined) now."""
        return self.urls[self.index]

    def connecting(self):
        return Say('info', "ordered-wamp: connecting to the router at {url}, realm '{realm}'",
                   {'url': ' or '.join(self.urls), 'realm': self.realm})

    def attempt(self):
        self.attempts += 1
        self._served = False

    def attempt_over(self):
        """Seconds to wait before the next attempt, which goes to the next URL."""
        self._failures = 0 if self._served else self._failures + 1
        self.index = (self.index + 1) % len(self.urls)
        return self.backoff(self._failures)

    def failed(self, exc, now):
        """An attempt failed with exc before joining."""
        if isinstance(exc, ApplicationError) and exc.error.startswith('wamp.close.'):
            return None   # the end of a joined session: left() said it
        if self._waiting_since is None:
            self._waiting_since = now
            self._next_reminder = FIRST_REMINDER
        elapsed = now - self._waiting_since
        fields = {'url': self.url, 'realm': self.realm, 'reason': _reason(exc)}
        refused = isinstance(exc, ApplicationError) and exc.error in HINTS
        if refused and self._refused != exc.error:
            self._refused = exc.error
            return Say('error', (
                "ordered-wamp: the router at {url} refused to let this master join "
                "realm '{realm}' {who}: {reason}. Fix: {hint}. Retrying with backoff."),
                dict(fields, who=self._who(), hint=HINTS[exc.error]))
        if elapsed == 0:
            return Say('info', (
                "ordered-wamp: waiting for the router at {url}, realm '{realm}' "
                "({reason}); retrying with backoff. {meanwhile}"),
                dict(fields, meanwhile=self._meanwhile()))
        if elapsed >= self._next_reminder:
            self._next_reminder = elapsed + min(max(elapsed, FIRST_REMINDER), MAX_REMINDER)
            return Say('info', (
                "ordered-wamp: still not joined realm '{realm}' at {url} after "
                "{elapsed} ({reason}). {meanwhile}"),
                dict(fields, elapsed=_duration(elapsed), meanwhile=self._meanwhile()))
        return None

    def joined(self, now):
        self.joins += 1
        self._served = True
        if self._mismatch is not None:
            return None    # its setup will tell
        waited = ''
        if self._waiting_since is not None:
            waited = f" after waiting {_duration(now - self._waiting_since)}"
        self._refused = None
        self._waiting_since = None
        return Say('info', "ordered-wamp: joined realm '{realm}' at {url}{waited}",
                   {'realm': self.realm, 'url': self.url, 'waited': waited})

    def setup_failed(self, exc):
        """The owner could not set up the joined session (``exc``): it is
        dropped. A router of another protocol is one error, then quiet."""
        self._served = False
        theirs = _router_protocol(exc)
        if theirs is None:
            self._mismatch = None
            return Say('info', "ordered-wamp: setting up the session failed ({why}); "
                               "reconnecting", {'why': _reason(exc)})
        if self._mismatch == (self.url, theirs):
            return None
        self._mismatch = (self.url, theirs)
        return Say('error', MISMATCH, {
            'url': self.url, 'theirs': wire.version_text(theirs),
            'ours': wire.version_text(wire.PROTOCOL),
            'meanwhile': self._meanwhile(self._set_ups)})

    def set_up(self):
        """The owner set up the joined session: it serves."""
        self._set_ups += 1
        if self._mismatch is None:
            return None
        self._mismatch = None
        return Say('info', "ordered-wamp: the router at {url} accepts this master's "
                           "protocol {ours} now", {'url': self.url,
                                                   'ours': wire.version_text(wire.PROTOCOL)})

    def moving_on(self):
        """The router joined has no leading sequencer: it is left for the next."""
        self._served = False
        if len(self.urls) > 1:
            next_one = f"trying {self.urls[(self.index + 1) % len(self.urls)]} next"
        else:
            next_one = "retrying with backoff"
        return Say('info', "ordered-wamp: the router at {url} has no sequencer leading "
                           "(a standby router, or its sequencer stopped); {next}",
                   {'url': self.url, 'next': next_one})

    def left(self, reason):
        if self._mismatch is not None:
            return None    # the mismatch's own leave: said once
        return Say('info', "ordered-wamp: left the router ({reason}); reconnecting",
                   {'reason': reason})

    def _who(self):
        return f"as '{self.authid}'" if self.authid else "anonymously"

    def _meanwhile(self, served=None):
        if self.joins if served is None else served:
            return "Meanwhile produced messages wait in the outbox."
        return "Buildbot's start-up waits until the master has joined."
