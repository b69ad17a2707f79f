"""The sequencer: a WAMP component that gives every message its place.

It runs inside the Crossbar router worker (a router component in the node
config written by ``buildbot-mq-ordered router``), so sequencing adds no
network hop. It registers the submit, replay and info procedures while it
leads (``leading.py``), with the default 'single' invocation policy: a
second sequencer on the realm is refused. What a call does is the
sequencing's (``sequencing.py``); here only what reaches it: the shape of
every call, and who the caller is. No Buildbot imports: the router host
needs only Crossbar.
"""

import gc
import os

from autobahn.twisted.wamp import ApplicationSession
from autobahn.wamp.exception import ApplicationError
from autobahn.wamp.types import RegisterOptions
from twisted.internet import defer

from buildbot_mq_ordered import wire
from buildbot_mq_ordered.router.checkpoints import Checkpoints
from buildbot_mq_ordered.router.journal import open_journal
from buildbot_mq_ordered.router.leading import Leadership
from buildbot_mq_ordered.router.protocolgate import ProtocolGate
from buildbot_mq_ordered.router.sequencing import Sequencing
from buildbot_mq_ordered.util import nodelay

# the router worker's WebSocket connections: no Nagle (see nodelay.py)
nodelay.install_in_router()


def _events(entries):
    """A group's entries as stream events of at most wire.MAX_EVENT_BYTES of data
    (one message may be larger alone): every master's frame stays well under
    the router's limit however many batches a group holds."""
    event, size = [], 0
    for entry in entries:
        n = len(entry[3])
        if event and size + n > wire.MAX_EVENT_BYTES:
            yield event
            event, size = [], 0
        event.append(entry)
        size += n
    if event:
        yield event


def _unless_stopped(d, sequencing):
    """A refusal that comes once the sequencer stopped (a commit under way
    at the stop, a submit that waited) is never sent: the router answers
    the caller itself when this session goes (the call was cancelled: a
    master tries again, quietly), where ours would say the router refused,
    or raise in autobahn once the transport is gone."""
    def stopped(failure):
        if sequencing.stopped:
            return defer.Deferred()    # never fires
        return failure
    return d.addErrback(stopped)


class Sequencer(ApplicationSession):
    """The sequencer's WAMP side; Crossbar makes it (nodeconfig's sequencer
    component). It opens the journal and makes the parts that work on it
    (``Sequencing``, ``Leadership``, ``Checkpoints``), registers the
    procedures while ``Leadership`` says so, refuses calls of any other
    shape with the wire's error URIs, and publishes what is committed."""

    def __init__(self, config=None):
        super().__init__(config)
        self.bind_producers = False
        self.protocols = ProtocolGate(lambda line: self.log.warn("{line}", line=line))
        self.journal = None
        self.sequencing = None
        self.leadership = None
        self._checkpoints = None
        self._procedures = []  # (not _registrations: ApplicationSession's own)

    @defer.inlineCallbacks
    def onJoin(self, details):
        extra = self.config.extra or {}
        location = extra.get('journal') or os.path.join(os.getcwd(), 'sequencer.sqlite')
        journal = open_journal(
            location,
            retention_messages=extra.get('retention_messages', 1000000),
            retention_seconds=extra.get('retention_seconds', 7 * 86400),
            fsync=extra.get('fsync', False), background_checkpoint=True)
        self.use_journal(journal, extra.get('key_cache_size', 10000))
        self._checkpoints = Checkpoints(journal, self.log)
        self._checkpoints.start()
        self.bind_producers = extra.get('bind_producers', False)
        # on this router only, leading or not: the monitor's /healthz asks it
        yield self.register(self.role, wire.ROLE)
        yield self.leadership.start()
        # the router worker's start-up objects (Crossbar: ~1M) stay for its
        # lifetime: out of the collector's way, or a full collection while
        # messages flow stalls every master for 100+ ms
        gc.collect()
        gc.freeze()

    def use_journal(self, journal, key_cache_size, run=None, clock=None):
        """The sequencing and the leadership on journal (``run``: how the
        writer runs its jobs, unit tests run them in place; ``clock``: its
        clock)."""
        self.journal = journal
        self.sequencing = Sequencing(
            journal, lambda: self.leadership.leading, self._publish, self.log,
            key_cache_size=key_cache_size, run=run, clock=clock)
        self.leadership = Leadership(journal, self.sequencing, self, self.log,
                                     self.config.realm)

    def onLeave(self, details):
        # the sequencing first: its writer's last commit ends before the
        # lease is released; its outcome reaches the reactor later, and is
        # neither published nor answered (``_answer``)
        for part in (self.sequencing, self._checkpoints, self.leadership):
            if part is not None:
                part.stop()
        if self.journal is not None:
            self.journal.close()
            self.journal = None
        super().onLeave(details)

    # the leadership's owner

    @defer.inlineCallbacks
    def serve(self, still_leads):
        """Register submit, replay and info; False if ``still_leads()`` turned
        false meanwhile. An ApplicationError if the router refuses them."""
        for procedure, uri, details in ((self.submit, wire.SUBMIT, True),
                                        (self.replay, wire.REPLAY, True),
                                        (self.info, wire.INFO, True)):
            options = RegisterOptions(details_arg='details') if details else None
            registration = yield self.register(procedure, uri, options=options)
            if not still_leads():
                # the lead was lost meanwhile: unserve unregistered the others
                yield registration.unregister()
                return False
            self._procedures.append(registration)
        return True

    def unserve(self):
        registrations, self._procedures = self._procedures, []
        for registration in registrations:
            defer.maybeDeferred(registration.unregister).addErrback(lambda f: None)

    # the sequencing's publisher

    def _publish(self, entries):
        if self.journal is None:
            return    # left (the sequencing publishes nothing once stopped)
        for event in _events(entries):
            self.publish(wire.STREAM, self.journal.stream_id, event)

    # the procedures: any shape a client may send, only the right one passes

    def submit(self, *args, details=None, **kwargs):
        # keywords it does not know are a later minor version's: ignored
        producer, messages = args if len(args) == 2 else (None, None)
        if not wire.is_producer_id(producer) or not isinstance(messages, list) or \
                not all(wire.is_submission(m) for m in messages):
            self.log.warn("sequencer: ignoring a malformed submit (producer {p!r})",
                          p=producer[:wire.MAX_PRODUCER_ID] if isinstance(producer, str)
                          else type(producer))
            raise ApplicationError(wire.MALFORMED, "malformed submit")
        if self.bind_producers:
            # who the router says the caller is, not what it says of itself:
            # no master can advance another one's mark
            authid = getattr(details, 'caller_authid', None)
            if not authid:
                raise ApplicationError(wire.NOT_BOUND, "the router did not disclose the caller")
            producer = f"{authid}/{producer}"
        return _unless_stopped(self.sequencing.submit(producer, messages), self.sequencing)

    def replay(self, *args, details=None, **kwargs):
        if not 1 <= len(args) <= 2 or \
                not all(type(a) is int and 0 <= a < 2 ** 63 for a in args):
            raise ApplicationError(wire.MALFORMED, "replay takes (from_pos, limit)")
        from_pos, limit = args if len(args) == 2 else (args[0], wire.MAX_REPLAY)
        return _unless_stopped(self.sequencing.replay(
            from_pos, limit, getattr(details, 'caller', None)), self.sequencing)

    def info(self, *args, details=None, **kwargs):
        # keywords it does not know are a later minor version's: ignored
        if args:
            raise ApplicationError(wire.MALFORMED, "info takes keywords only")
        # an anonymous session's authid is new each time: only a bound one names a master
        self.protocols.check(kwargs, getattr(details, 'caller_authid', None)
                             if self.bind_producers else None)
        return self.sequencing.info(self.leadership.term)

    def role(self, *args, **kwargs):
        return self.leadership.role()

    def onUserError(self, fail, msg):
        """A refusal (an ApplicationError) is the caller's to hear, and the
        sequencing logs what is worth it once per run (a full disk): not a
        line per refused call, as autobahn would. Anything else is a bug,
        logged with its traceback."""
        if isinstance(getattr(fail, 'value', None), ApplicationError):
            return
        super().onUserError(fail, msg)
