"""The keys of ``c['mq']`` for type ``ordered-wamp``: defaults and validation.

``validate`` returns messages that name the bad key; the package's
registration hands them to Buildbot's config loader as config errors.
"""

import os
from urllib.parse import urlparse

from buildbot_mq_ordered import MQ_TYPE
from buildbot_mq_ordered.util.backoff import Backoff

# key -> default (CHECKS below: key -> its check)
DEFAULTS = {
    'router_url': None,
    'realm': 'buildbot',
    'wamp_debug_level': 'error',
    # backoff, seconds: between connection attempts (RouterLink) and
    # between refused submits (Producer), with jitter, and between failed
    # replays (exact)
    'initial_retry_delay': 0.5,
    'max_retry_delay': 10.0,
    'retry_delay_growth': 1.5,
    'retry_delay_jitter': 0.1,
    # messages held while the router is unreachable, before the oldest drop
    'max_outbox': 100000,
    # stream entries held while waiting for a missing position
    'reorder_buffer_size': 10000,
    # largest message accepted by produce, in bytes: its routing key's
    # (UTF-8) and its data's (msgpack)
    'max_message_size': 1048576,
    # seconds stopService waits for unacknowledged messages
    'shutdown_timeout': 10.0,
    # authentication (WAMP-CRA); secret may be a Buildbot secret (Interpolate)
    'authid': None,
    'secret': None,
    'secret_file': None,
    # PEM file of the CA that signed the router's certificate (wss://)
    'ca_file': None,
}

KEYS = frozenset(DEFAULTS)
# keys whose change means a new connection
CONNECTION_KEYS = ('router_url', 'realm', 'initial_retry_delay', 'max_retry_delay',
                   'retry_delay_growth', 'retry_delay_jitter', 'authid', 'secret',
                   'secret_file', 'ca_file')
DEBUG_LEVELS = ('critical', 'error', 'warn', 'info', 'debug', 'trace')


def _positive_int(v):
    if isinstance(v, bool) or not isinstance(v, int) or v < 1:
        return "a positive integer"
    return None


def _positive_number(v):
    if isinstance(v, bool) or not isinstance(v, (int, float)) or v <= 0:
        return "a positive number"
    return None


MAX_MESSAGE_SIZE_LIMIT = 8 * 1024 * 1024  # the router takes 16 MiB frames


def _message_size(v):
    if _positive_int(v) or v > MAX_MESSAGE_SIZE_LIMIT:
        return f"a positive integer of at most {MAX_MESSAGE_SIZE_LIMIT}"
    return None


def _non_negative_number(v):
    if isinstance(v, bool) or not isinstance(v, (int, float)) or v < 0:
        return "a number >= 0"
    return None


def _growth(v):
    if isinstance(v, bool) or not isinstance(v, (int, float)) or v < 1:
        return "a number >= 1"
    return None


def _router_url(v):
    if isinstance(v, list):
        # several routers on one journal: a master moves on to the next
        if not v:
            return "a ws:// or wss:// URL, or a list of them"
        for url in v:
            if _router_url(url) is not None:
                return f"a ws:// or wss:// URL, or a list of them ({url!r} is not)"
        return None
    if not isinstance(v, str) or not v:
        return "a ws:// or wss:// URL, or a list of them"
    try:
        url = urlparse(v)
        url.port  # noqa: B018  (raises on a bad port)
    except ValueError:
        return "a ws:// or wss:// URL, or a list of them"
    if url.scheme not in ('ws', 'wss') or not url.hostname:
        return "a ws:// or wss:// URL, or a list of them"
    return None


def _realm(v):
    if not isinstance(v, str) or not v:
        return "a non-empty string"
    return None


def _debug_level(v):
    if v not in DEBUG_LEVELS:
        return "one of " + ", ".join(DEBUG_LEVELS)
    return None


def _optional_str(v):
    if v is not None and not isinstance(v, str):
        return "a string"
    return None


def _readable_file(v):
    if not isinstance(v, str):
        return "a path to a readable file"
    if not os.access(v, os.R_OK) or not os.path.isfile(v):
        return "a path to a readable file"
    return None


def _secret(v):
    # a plain string, or a Buildbot renderable (Interpolate('%(secret:...)s'))
    if v is None or isinstance(v, str) or hasattr(v, 'getRenderingFor'):
        return None
    return "a string or a Buildbot secret (util.Secret / util.Interpolate)"


# key -> check: None when the value is fine, otherwise a description of
# what the value must be
CHECKS = {
    'router_url': _router_url,
    'realm': _realm,
    'wamp_debug_level': _debug_level,
    'initial_retry_delay': _positive_number,
    'max_retry_delay': _positive_number,
    'retry_delay_growth': _growth,
    'retry_delay_jitter': _non_negative_number,
    'max_outbox': _positive_int,
    'reorder_buffer_size': _positive_int,
    'max_message_size': _message_size,
    'shutdown_timeout': _non_negative_number,
    'authid': _optional_str,
    'secret': _secret,
    'secret_file': _readable_file,
    'ca_file': _readable_file,
}


def validate(mq):
    """Return a list of error messages for the c['mq'] dict (empty if valid)."""
    errors = []
    unknown = sorted(set(mq) - KEYS - {'type'})
    if unknown:
        errors.append(f"unrecognized keys in c['mq']: {', '.join(unknown)}")
    if mq.get('router_url') is None:
        errors.append(f"c['mq']['router_url'] is required for type '{MQ_TYPE}'")
    for key, check in CHECKS.items():
        if key in mq and not (mq[key] is None and DEFAULTS[key] is None):
            problem = check(mq[key])
            if problem:
                errors.append(f"c['mq']['{key}'] must be {problem}, not {mq[key]!r}")
    if mq.get('secret') is not None and mq.get('secret_file') is not None:
        errors.append("c['mq']: set only one of 'secret' and 'secret_file'")
    has_secret = mq.get('secret') is not None or mq.get('secret_file') is not None
    if has_secret != (mq.get('authid') is not None):
        errors.append("c['mq']: 'authid' and a secret ('secret' or 'secret_file') go together")
    first = mq.get('initial_retry_delay', DEFAULTS['initial_retry_delay'])
    cap = mq.get('max_retry_delay', DEFAULTS['max_retry_delay'])
    if not (_positive_number(first) or _positive_number(cap)) and first > cap:
        errors.append("c['mq']['initial_retry_delay'] must not exceed 'max_retry_delay'")
    return errors


def resolve(mq):
    """c['mq'] with defaults filled in (assumes validate() found nothing)."""
    opts = dict(DEFAULTS)
    opts.update({k: v for k, v in mq.items() if k != 'type'})
    return opts


def connection_changed(old, new):
    """Do two resolved c['mq'] differ in a key of the connection?"""
    return any(old[k] != new[k] for k in CONNECTION_KEYS)


def retry_backoff(options):
    """Delays between connection attempts, and between refused submits
    (spread by the jitter: masters cut off together come back apart)."""
    return Backoff(options['initial_retry_delay'], options['retry_delay_growth'],
                   options['max_retry_delay'], options['retry_delay_jitter'])


def replay_backoff(options):
    """Delays between failed replays: the same, exact."""
    return Backoff(options['initial_retry_delay'], options['retry_delay_growth'],
                   options['max_retry_delay'])


def authentication(options, mq):
    """Deferred WAMP-CRA settings for autobahn (None without an authid), the
    secret read from its file or rendered through the secret providers of
    the MQ service's master. Never logged."""
    from twisted.internet import defer

    def secret():
        if options['secret_file'] is not None:
            with open(options['secret_file']) as f:
                return f.read().strip()
        if hasattr(options['secret'], 'getRenderingFor'):
            from buildbot.process.properties import Properties
            props = Properties()
            props.master = mq.master
            return props.render(options['secret'])
        return options['secret']

    if options['authid'] is None:
        return defer.succeed(None)
    return defer.maybeDeferred(secret).addCallback(
        lambda s: {'wampcra': {'authid': options['authid'], 'secret': s}})
