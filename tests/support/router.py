"""The router for integration tests: the project's own router command."""

import atexit
import os
import tempfile

from buildbot_mq_ordered.load.processes import Router
from tests.support.tlsutil import make_test_ca

_shared = None


def shared_router():
    """One router for all tests that need only a working router."""
    global _shared
    if _shared is None:
        _shared = Router().start()
        atexit.register(_shared.cleanup)
    return _shared


SECRETS = "# cluster masters\nmaster1 s3cret-one\n\nmaster2   s3cret-two\n"
_routers = {}


def router_of_kind(kind):
    """One router per kind for the whole run: 'auth' (secret file), 'tls'."""
    if kind not in _routers:
        tmp = tempfile.mkdtemp(prefix='bmo-sec-')
        args = []
        if kind == 'auth':
            path = os.path.join(tmp, 'secrets')
            with open(path, 'w') as f:
                f.write(SECRETS)
            args = ['--secret-file', path]
            router = Router(extra_args=args)
        else:
            paths = make_test_ca(tmp)
            router = TLSRouter(extra_args=['--tls-cert', paths['server.pem'],
                                           '--tls-key', paths['server.key']])
            router.ca_file = paths['ca.pem']
        _routers[kind] = router.start()
        atexit.register(router.cleanup)
    return _routers[kind]


class TLSRouter(Router):
    @property
    def url(self):
        return f'wss://localhost:{self.port}/ws'
