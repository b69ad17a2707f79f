"""Delivery to the local consumers of one master."""

from twisted.python import log

from buildbot.util import tuplematch

from buildbot_mq_ordered import wire


class Dispatcher:
    """Hands the stream entries the ``StreamFollower`` releases, in order,
    to the consumers of the ``ConsumerRegistry`` whose filter matches,
    decoding a message's data once (and only if a consumer matches). The
    MQ's ``StreamReader`` calls ``deliver``; ``delivery`` is the (pos, seq)
    being delivered while a callback runs, ``delivered`` how many entries
    were (the MQ shows both)."""

    def __init__(self, registry):
        self.registry = registry
        self.delivery = None
        self.delivered = 0

    def deliver(self, entries):
        for pos, seq, key, raw, *_ in entries:   # [pos, seq, key, data, term]
            key = tuple(key)
            data = decoded = None
            for qref in self.registry.consumers:
                if not tuplematch.matchTuple(key, qref.filter):
                    continue
                if not decoded:
                    try:
                        data = wire.decode_data(raw)
                    except (ValueError, TypeError) as e:
                        log.msg(f"ordered-wamp: ignored stream position {pos}: "
                                f"undecodable data ({wire.shown(str(e))})")
                        break
                    decoded = True
                self.delivery = (pos, seq)
                self.registry.invoke(qref, key, data)
        self.delivery = None
        self.delivered += len(entries)
