"""Which masters the sequencer serves, by the wire protocol their info()
handshake offers (``wire.PROTOCOL``), and the one line it logs of each
refused one. Pure: the sequencer hands it the call's keywords and the
caller's authid."""

from autobahn.wamp.exception import ApplicationError

from buildbot_mq_ordered import wire

REFUSED = ("sequencer: refused a master{who} of protocol {offered}: this router speaks "
           "{ours}. Upgrade the older side (see 'Protocol versions' in docs/upgrading.rst); "
           "it keeps retrying and is let in once both speak one major version. Not logged "
           "again for{whom}.")


class ProtocolGate:
    """Accepts a handshake of the sequencer's major version (any minor:
    a minor adds only what the other side may ignore); refuses any other
    with ``wire.PROTOCOL_MISMATCH`` naming both versions. ``log(text)`` is
    called once per refused (authid, version): a master retries with
    backoff for as long as it is refused, and one line says it all."""

    def __init__(self, log):
        self._log = log
        self._told = set()

    def check(self, kwargs, authid=None):
        """Returns if the caller may go on; raises ApplicationError if not."""
        offered = wire.offered_protocol(kwargs)
        if offered is None:
            raise ApplicationError(wire.MALFORMED,
                                   "info's protocol is [major, minor], two integers")
        if offered[0] == wire.PROTOCOL[0]:
            return
        ours, theirs = wire.version_text(wire.PROTOCOL), wire.version_text(offered)
        if (authid, offered) not in self._told:
            self._told.add((authid, offered))
            who = f" '{authid}'" if authid else ""
            whom = " this master" if authid else " masters of that version without an authid"
            self._log(REFUSED.format(who=who, offered=theirs, ours=ours, whom=whom))
        raise ApplicationError(
            wire.PROTOCOL_MISMATCH,
            f"this router speaks protocol {ours}; the master offered {theirs}",
            protocol=list(wire.PROTOCOL))
