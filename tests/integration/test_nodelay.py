"""TCP_NODELAY on a master's own connection to the router (nodelay.py)."""

import socket

from twisted.internet import defer
from twisted.trial import unittest

from tests.support.router import shared_router
from tests.support.util import start_master
from tests.support.util import with_timeout


class NoDelay(unittest.TestCase):
    timeout = 60

    @defer.inlineCallbacks
    def test_the_masters_socket_has_no_nagle(self):
        m = yield start_master(self, shared_router())
        yield with_timeout(m.startConsuming(lambda k, d: None, ('x',)), what='the join')
        sock = m.session._transport.transport.getHandle()
        self.assertNotEqual(sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY), 0)
