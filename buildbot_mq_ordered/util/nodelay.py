"""TCP_NODELAY on the WebSocket connections between masters and the router.

autobahn (26.10 and earlier) never sets it: ``WebSocketAdapterProtocol.
connectionMade`` calls ``transport.setTcpNoDelay(self.tcpNoDelay)`` before
``_connectionMade`` copies ``tcpNoDelay`` from the factory, and swallows the
AttributeError. With Nagle on, a small frame written while an earlier one
is unacknowledged waits for the peer's delayed ACK (40 ms on Linux): in the
router, the submit result written right after the stream event to the same
master.
"""


def set_on(protocol):
    """A master's own connection (autobahn's 'connect' event gives its
    protocol): set it on the TCP transport underneath, TLS or not. Nothing
    else in the master (Buildbot's own web sockets) is touched."""
    transport = getattr(protocol, 'transport', None)
    for _ in range(3):   # WebSocket -> TLS -> TCP at most
        if transport is None:
            return
        if hasattr(transport, 'setTcpNoDelay'):
            transport.setTcpNoDelay(True)
            return
        transport = getattr(transport, 'transport', None)


def install_in_router():
    """The router worker's server side, whose connections Crossbar makes:
    a class default makes the attribute exist in time. Called only by the
    sequencer, i.e. in the Crossbar process ``buildbot-mq-ordered router``
    starts for us."""
    from autobahn.twisted import websocket
    if 'tcpNoDelay' not in vars(websocket.WebSocketServerProtocol):
        websocket.WebSocketServerProtocol.tcpNoDelay = True
