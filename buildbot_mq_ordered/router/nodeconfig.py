"""The Crossbar node configuration that ``buildbot-mq-ordered router`` writes.

One router worker, one realm, one WebSocket transport, the sequencer as a
router component. Roles:

- ``master``: may call submit and replay and subscribe to the stream;
  may not publish or register anything, so a master cannot forge stream
  events or stand in for the sequencer.
- ``monitor``: the second router component (monitor/component.py): reads the masters'
  reports (which masters may publish, and nothing else), the stream and
  ``info``; registers ``status`` (which masters may call).
- ``sequencer``: the router component; the only one that may register the
  sequencer's procedures and publish the stream. The router discloses this
  role on every event it publishes, and masters drop stream events from any
  other publisher - so even on an open realm no other client's event is
  delivered.

``open_realm`` gives every session every permission: for tests of a
misbehaving client and for running the stock ``wamp`` MQ on the same router
(it publishes on its own topics). Never for production.
"""

import os
import re

from buildbot_mq_ordered import wire

AUTHID = re.compile(r'^[A-Za-z0-9][A-Za-z0-9_.@-]{0,254}$')
SECRET_ENV = 'BMO_ROUTER_SECRET_{}'

MAX_MESSAGE_SIZE = 16 * 1024 * 1024


def _allow(call=False, register=False, publish=False, subscribe=False):
    return {'call': call, 'register': register, 'publish': publish,
            'subscribe': subscribe}


def _permission(uri, match, allow, disclose=False, caller=False):
    return {'uri': uri, 'match': match, 'allow': allow,
            'disclose': {'caller': caller, 'publisher': disclose}, 'cache': True}


def roles(open_realm=False):
    everything = _allow(True, True, True, True)
    # a master's identity is disclosed to the sequencer on submit (its
    # producer ids are bound to its authid) and replay (replays under way
    # are bounded per session) and info (a refused protocol is logged once
    # per authid): see Sequencer.submit, .replay and .info
    master = [_permission('', 'prefix', everything, caller=True)] if open_realm else [
        _permission(wire.SUBMIT, 'exact', _allow(call=True), caller=True),
        _permission(wire.REPLAY, 'exact', _allow(call=True), caller=True),
        _permission(wire.INFO, 'exact', _allow(call=True), caller=True),
        _permission(wire.ROLE, 'exact', _allow(call=True)),
        _permission(wire.STREAM, 'exact', _allow(subscribe=True)),
        _permission(wire.REPORT, 'exact', _allow(publish=True)),
        _permission(wire.STATUS, 'exact', _allow(call=True)),
    ]
    # the monitor (monitor/component.py) reads reports, the stream and info; answers status
    monitor = [_permission('', 'prefix', everything)] if open_realm else [
        _permission(wire.REPORT, 'exact', _allow(subscribe=True)),
        _permission(wire.STREAM, 'exact', _allow(subscribe=True)),
        _permission(wire.INFO, 'exact', _allow(call=True)),
        _permission(wire.ROLE, 'exact', _allow(call=True)),
        _permission(wire.STATUS, 'exact', _allow(register=True)),
    ]
    return [
        {'name': 'master', 'permissions': master},
        {'name': wire.MONITOR_ROLE, 'permissions': monitor},
        # the router discloses the sequencer's role on its events: masters
        # deliver only events whose publisher has the role 'sequencer'
        {'name': wire.SEQUENCER_ROLE,
         'permissions': [_permission('', 'prefix', everything, disclose=True)]},
    ]


def parse_secret_file(text, name='secret file'):
    """``authid secret`` per line (blank lines and ``#`` comments allowed).

    Returns a list of (authid, secret); raises ValueError naming the line.
    """
    users = []
    seen = set()
    for n, line in enumerate(text.splitlines(), 1):
        stripped = line.strip()
        if not stripped or stripped.startswith('#'):
            continue
        parts = stripped.split()
        if len(parts) != 2:
            raise ValueError(f"{name}, line {n}: expected 'authid secret' "
                             f"(two words), found {len(parts)}")
        authid, secret = parts
        if not AUTHID.match(authid):
            raise ValueError(f"{name}, line {n}: invalid authid {authid!r} (letters, "
                             "digits and _ . @ - only)")
        if authid in seen:
            raise ValueError(f"{name}, line {n}: authid {authid!r} appears twice")
        seen.add(authid)
        users.append((authid, secret))
    if not users:
        raise ValueError(f"{name}: no 'authid secret' lines")
    return users


def auth_config(authids):
    """WAMP-CRA for the given authids (role master), or anonymous masters.

    The secrets are not written into the config: each is a reference to an
    environment variable (SECRET_ENV) that Crossbar reads at start.
    """
    if not authids:
        return {'anonymous': {'type': 'static', 'role': 'master'}}
    return {'wampcra': {'type': 'static', 'users': {
        authid: {'secret': '${%s}' % SECRET_ENV.format(i), 'role': 'master'}
        for i, authid in enumerate(authids)}}}


def node_config(port, host='127.0.0.1', realm='buildbot', cbdir='.',
                open_realm=False, retention_messages=1000000,
                retention_seconds=7 * 86400, fsync=False, key_cache_size=10000,
                authids=(), tls_cert=None, tls_key=None, journal=None,
                metrics_port=None, metrics_host='127.0.0.1'):
    endpoint = {'type': 'tcp', 'port': port, 'interface': host}
    if tls_cert:
        endpoint['tls'] = {'certificate': os.path.abspath(tls_cert),
                           'key': os.path.abspath(tls_key)}
    transport = {
        'type': 'websocket',
        'endpoint': endpoint,
        'serializers': ['msgpack', 'json'],
        'options': {'max_message_size': MAX_MESSAGE_SIZE,
                    'auto_ping_interval': 10000, 'auto_ping_timeout': 5000},
        'auth': auth_config(list(authids)),
    }
    sequencer = {
        'type': 'class',
        'classname': 'buildbot_mq_ordered.router.sequencer.Sequencer',
        'realm': realm,
        'role': wire.SEQUENCER_ROLE,
        'extra': {
            'journal': journal or os.path.join(os.path.abspath(cbdir), 'sequencer.sqlite'),
            'retention_messages': retention_messages,
            'retention_seconds': retention_seconds,
            'fsync': fsync,
            'key_cache_size': key_cache_size,
            # authenticated masters: producer ids bound to the caller's authid
            'bind_producers': bool(authids),
        },
    }
    return {
        'version': 2,
        'controller': {},
        'workers': [{
            'type': 'router',
            'realms': [{'name': realm, 'roles': roles(open_realm)}],
            'transports': [transport],
            'components': [sequencer, monitor_component(realm, metrics_port, metrics_host)],
        }],
    }


def monitor_component(realm, metrics_port=None, metrics_host='127.0.0.1'):
    """The monitor (monitor/component.py) beside the sequencer: status, /metrics,
    /healthz."""
    return {'type': 'class', 'classname': 'buildbot_mq_ordered.router.monitor.component.Monitor',
            'realm': realm, 'role': wire.MONITOR_ROLE,
            'extra': {'metrics_port': metrics_port, 'metrics_host': metrics_host}}
