"""``StreamReader``: the I/O of a ``StreamFollower`` on a joined session.

It subscribes to the stream, asks ``info()`` on join, every ``HEARTBEAT``
seconds after and when the follower asks (for the journal's terms), calls
replay, and carries out the follower's actions in their order: entries go
to ``deliver``, reports to the log, a retry to ``later``. Used by the MQ and by the ``tail`` command.
"""

from autobahn.wamp.exception import ApplicationError
from autobahn.wamp.types import SubscribeOptions
from twisted.internet import defer
from twisted.internet import task
from twisted.python import log

from buildbot_mq_ordered import wire
from buildbot_mq_ordered.master.actions import AskInfo
from buildbot_mq_ordered.master.actions import Deliver
from buildbot_mq_ordered.master.actions import Replay
from buildbot_mq_ordered.master.actions import RetryLater
from buildbot_mq_ordered.master.actions import report
from buildbot_mq_ordered.master.lineage import history_of

# seconds between info() calls while joined: the head tells of positions
# whose events never came, and a router whose sequencer stopped leading is
# found out even by a master that only consumes
HEARTBEAT = 5.0


class StreamReader:
    """Follows the stream on a joined session for its owner (the MQ, or the
    ``tail`` command): the I/O shell around a ``StreamFollower``. The owner
    hands it each joined session (``join``) and each leave, and gives it
    ``deliver(entries)``, ``later(delay, f)`` and ``move_on()``; ``session``
    is the joined session once the follower was placed in its stream."""

    def __init__(self, follower, deliver, later, move_on, after=lambda: None, clock=None):
        self.follower = follower
        self._deliver = deliver
        self._later = later        # later(delay, f): a timer its owner cancels at stop
        self._move_on = move_on    # leave this router for the next
        self._after = after        # after every batch of actions
        # the joined session, once info() placed the follower in its stream
        self.session = None
        self.foreign_events = 0
        self._clock = clock        # of the heartbeat: the reactor unless a test's
        self._heartbeat = None

    @defer.inlineCallbacks
    def join(self, session, still_joined):
        """Subscribe and place the follower; False if the session left meanwhile."""
        yield session.subscribe(self._on_stream, wire.STREAM,
                                options=SubscribeOptions(details_arg='details'))
        info = yield session.call(wire.INFO, **wire.handshake())
        if not still_joined():
            return False
        self.session = session
        self.act(self.follower.on_join(info['stream_id'], info['first_pos'], info['head'],
                                       history_of(info)))
        self._heartbeat = task.LoopingCall(self._ask_info, session)
        if self._clock is not None:
            self._heartbeat.clock = self._clock
        self._heartbeat.start(HEARTBEAT, now=False).addErrback(
            log.err, "ordered-wamp: the heartbeat failed")
        return True

    def leave(self):
        self.session = None
        if self._heartbeat is not None and self._heartbeat.running:
            self._heartbeat.stop()
        self._heartbeat = None
        self.act(self.follower.on_leave())

    def no_sequencer(self, failure):
        """A call found no sequencer on this router (it stopped leading):
        move on to the next router. True if so."""
        if failure.check(ApplicationError) and failure.value.error == wire.NO_SEQUENCER:
            self._move_on()
            return True
        return False

    def act(self, actions):
        """Carry out what the follower decided, in its order."""
        for a in actions:
            if isinstance(a, Deliver):
                self._deliver(a.entries)
            elif isinstance(a, Replay):
                self._replay(a)
            elif isinstance(a, RetryLater):
                self._later(a.delay, lambda: self.act(self.follower.retry()))
            elif isinstance(a, AskInfo):
                self._ask_info(self.session, a.token)
            else:
                report([a])
        self._after()

    def _on_stream(self, *args, details=None, **kwargs):
        if details is None or details.publisher_authrole != wire.SEQUENCER_ROLE:
            self.foreign_events += 1
            if self.foreign_events in (1, 10, 100, 1000, 10000):
                log.msg("ordered-wamp: ignored a stream event not published by the sequencer "
                        f"({self.foreign_events} so far)")
            return
        if len(args) != 2 or kwargs:
            log.msg("ordered-wamp: ignored a malformed stream event")
            return
        self.act(self.follower.on_event(*args))

    def _replay(self, action):
        d = self.session.call(wire.REPLAY, action.first, action.count)
        d.addCallbacks(
            lambda answer: self.act(self.follower.on_replay(action.token, answer)),
            lambda f: self.no_sequencer(f) or self.act(
                self.follower.on_replay_failed(action.token, f.getErrorMessage())))
        d.addErrback(log.err, "ordered-wamp: handling a replay answer failed")

    def _ask_info(self, session, token=None):
        """info(): a heartbeat (token None) or the follower's AskInfo."""
        def answered(info):
            if session is self.session:
                self.act(self.follower.on_info(info['stream_id'], info['first_pos'],
                                               info['head'], history_of(info), token))

        def failed(f):
            if session is not self.session or self.no_sequencer(f):
                return
            if token is None:
                log.msg(f"ordered-wamp: info failed ({wire.shown(f.getErrorMessage())})")
            else:
                self.act(self.follower.on_info_failed(token, f.getErrorMessage()))
        session.call(wire.INFO, **wire.handshake()).addCallbacks(answered, failed).addErrback(
            log.err, "ordered-wamp: handling an info answer failed")
