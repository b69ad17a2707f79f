"""The load's routing keys: which key each message of a load node goes to. Pure."""


def routing_key(name, i, shared_keys=10, distinct_keys=0, index=0, nodes=1):
    """The routing key of message ``i`` of node ``name`` (deterministic).

    Default mix: even messages on ``shared_keys`` keys all nodes produce on,
    odd ones on the node's private key. With ``distinct_keys`` N, all
    nodes' messages together cycle through N keys (``index``/``nodes`` place
    this node in that cycle). No '.' in any element (Buildbot's stock
    ``wamp`` MQ splits on it).
    """
    if distinct_keys:
        return ('load', 'k%d' % ((i * nodes + index) % distinct_keys), 'any')
    if shared_keys and i % 2 == 0:
        return ('load', 'shared-%d' % ((i // 2) % shared_keys), 'any')
    return ('load', 'private', name)
