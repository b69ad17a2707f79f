"""The router for integration tests: the project's own router command."""

import atexit

from buildbot_mq_ordered.cli.processes import Router

_shared = None


def shared_router():
    """One router for all tests that need only a working router."""
    global _shared
    if _shared is None:
        _shared = Router().start()
        atexit.register(_shared.cleanup)
    return _shared


__all__ = ['Router', 'shared_router']
