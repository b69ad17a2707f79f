"""TCP_NODELAY on autobahn's Twisted WebSocket connections.

autobahn (26.10 and earlier) never sets it: ``WebSocketAdapterProtocol.
connectionMade`` calls ``transport.setTcpNoDelay(self.tcpNoDelay)`` before
``_connectionMade`` copies ``tcpNoDelay`` from the factory, and swallows the
AttributeError. With Nagle on, a small frame written while an earlier one
is unacknowledged waits for the peer's delayed ACK (40 ms on Linux): in the
router, the submit result written right after the stream event to the same
master. A class default makes the attribute exist in time.
"""


def install():
    from autobahn.twisted import websocket
    for cls in (websocket.WebSocketServerProtocol, websocket.WebSocketClientProtocol):
        if 'tcpNoDelay' not in vars(cls):
            cls.tcpNoDelay = True
