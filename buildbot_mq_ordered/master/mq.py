"""``OrderedWampMQ``: Buildbot's MQ API over the sequencer's stream.

Buildbot's API and the wiring of the parts: produced messages go to the
``Producer`` and the ``Submitter`` sends them (one batch in flight); the
``StreamReader`` follows the stream on the joined session (its decisions
are the ``StreamFollower``'s) and hands what it releases to the
``Dispatcher``, which calls the local consumers (``ConsumerRegistry``).
The ``LinkKeeper`` keeps one ``RouterLink``; ``startConsuming`` waits at
the ``StartGate`` for the first join, and the stop waits (``IdleWatch``)
until what was produced here is sequenced and delivered here.
"""

import uuid

from twisted.internet import defer
from twisted.internet import reactor
from twisted.logger import Logger
from twisted.python import log

from buildbot.mq import base
from buildbot.util import service

from buildbot_mq_ordered.master import config as mqconfig
from buildbot_mq_ordered.master.actions import report
from buildbot_mq_ordered.master.consumers import ConsumerRegistry
from buildbot_mq_ordered.master.dispatch import Dispatcher
from buildbot_mq_ordered.master.follower import StreamFollower
from buildbot_mq_ordered.master.link import set_log_level
from buildbot_mq_ordered.master.linkkeeper import LinkKeeper
from buildbot_mq_ordered.master.producer import Producer
from buildbot_mq_ordered.master.report import MasterReporter
from buildbot_mq_ordered.master.streamreader import StreamReader
from buildbot_mq_ordered.master.submitter import Submitter
from buildbot_mq_ordered.master.timers import Timers
from buildbot_mq_ordered.master.waits import IdleWatch
from buildbot_mq_ordered.master.waits import StartGate

stop_log = Logger(namespace='ordered-wamp')


class OrderedWampMQ(service.ReconfigurableServiceMixin, base.MQBase):
    """MQ type ``ordered-wamp``: Buildbot's MQConnector makes one per master
    (load nodes and tests make their own) and calls ``produce``,
    ``startConsuming`` and the service's reconfig, start and stop; this
    wires the parts that carry them out. ``clock`` and ``link_class`` are
    the reactor and ``RouterLink`` unless a test's."""

    def __init__(self, clock=None, link_class=None):
        super().__init__()
        self.clock = clock or reactor
        self.options = None
        # one producer identity per MQ instance: the sequencer de-duplicates on it
        self.producer_id = uuid.uuid4().hex
        self.producer = Producer()
        self.follower = StreamFollower()
        self.registry = ConsumerRegistry(self.invokeQref)
        self.dispatcher = Dispatcher(self.registry)
        self.idle = IdleWatch(self._is_idle, self.clock)
        self.timers = Timers(self.clock)    # replay retries
        self.gate = StartGate(lambda: (self.options['realm'], self.links.where()))
        self.links = LinkKeeper(self, self._joined, self._left, self.gate.let_through,
                                self.clock, link_class)
        self.reader = StreamReader(self.follower, self.dispatcher.deliver, self.timers.later,
                                   self.links.move_on, after=self.idle.check, clock=self.clock)
        self.submitter = Submitter(self.producer, self.producer_id, self.reader,
                                   self.links.where, self._acked, clock=self.clock,
                                   first_retained=lambda: self.follower.first_retained)
        self.reporter = MasterReporter(self, clock=self.clock)   # to the router's monitor

    @property
    def stats(self):
        p, f = self.producer, self.follower
        return {'produced': p.produced, 'rejected': p.rejected, 'batches': p.batches,
                'outbox_dropped': p.outbox.dropped, 'delivered': self.delivered,
                'skipped': f.skipped, 'foreign_events': self.reader.foreign_events,
                'stream_changes': f.stream_changes, 'rewrites': f.rewrites,
                'acknowledged_lost': p.acknowledged.lost,
                'other_stream_events': f.other_stream_events}

    outbox = property(lambda self: self.producer.outbox)
    link = property(lambda self: self.links.link, doc="The RouterLink, if any.")
    stream_id = property(lambda self: self.follower.stream_id)
    # (pos, seq) of the message being delivered, while a callback runs
    delivery = property(lambda self: self.dispatcher.delivery)
    delivered = property(lambda self: self.dispatcher.delivered)

    @property
    def session(self):
        """The joined session, once the sequencer's info() placed us in its stream."""
        return self.reader.session

    # -- configuration and lifecycle ---------------------------------------

    def reconfigServiceWithBuildbotConfig(self, new_config):
        old, self.options = self.options, mqconfig.resolve(new_config.mq)
        opts = self.options
        set_log_level(opts['wamp_debug_level'])
        self.producer.outbox.max_messages = opts['max_outbox']
        self.follower.capacity = opts['reorder_buffer_size']
        self.follower.replays.backoff = mqconfig.replay_backoff(opts)
        self.producer.backoff = mqconfig.retry_backoff(opts)
        if old is not None and self.running and mqconfig.connection_changed(old, opts):
            log.msg("ordered-wamp: router connection settings changed; reconnecting")
            self.links.restart().addErrback(
                log.err, "ordered-wamp: reconnecting after a reconfig failed")
        return super().reconfigServiceWithBuildbotConfig(new_config)

    @defer.inlineCallbacks
    def startService(self):
        yield super().startService()
        yield self.links.start()

    @defer.inlineCallbacks
    def stopService(self):
        self.links.stopping = True
        self.gate.give_up()
        timeout = self.options['shutdown_timeout']
        deadline = self.clock.seconds() + timeout
        # only a joined master can have its messages acknowledged: with the
        # router away, waiting would only hold up `buildbot stop`
        if self.session is not None:
            yield self.idle.wait(timeout)
        # callbacks still running may produce: let them finish (as every
        # Buildbot MQ does), then send what they produced
        yield self._deferwaiter.wait()
        if self.session is not None:
            yield self.idle.wait(max(0.0, deadline - self.clock.seconds()))
        if len(self.outbox):
            # an error line, not a Failure: an operator's stop is no traceback
            stop_log.error(
                "ordered-wamp: {n} messages were not acknowledged by the sequencer "
                "{when} and are lost", n=len(self.outbox),
                when=(f"within {timeout}s of shutdown" if self.session is not None
                      else "before shutdown (the router was not joined)"))
        self.reporter.stop(final=True)
        yield self.links.stop()
        if self.reader.session is not None:
            self.reader.leave()
        self.timers.cancel()
        self.submitter.stop()
        yield super().stopService()

    # -- Buildbot's MQ API ----------------------------------------------------

    def produce(self, routingKey, data):
        report(self.producer.produce(routingKey, data, self.options['max_message_size']))
        self.submitter.soon()

    def startConsuming(self, callback, filter, persistent_name=None):
        if any(not isinstance(k, str) and k is not None for k in filter):
            raise AssertionError(f"{filter} is not a filter")
        qref = self.registry.add(callback, filter, persistent_name)
        # effective once we know our place in the stream
        return self.gate.wait().addCallback(lambda _: qref)

    # -- the link's calls, and the parts' ---------------------------------------

    @defer.inlineCallbacks
    def _joined(self, session):
        placed = yield self.reader.join(session, lambda: self.links.holds(session))
        if placed:
            self.gate.opened()
            if not self.links.stopping:   # its last report may be sent already
                self.reporter.start(session)
            self.submitter.flush()

    def _left(self):
        self.producer.not_sent()
        self.reporter.stop()
        self.reader.leave()

    def _acked(self, last_pos):
        self.follower.on_acked(last_pos)
        self.idle.check()

    def _is_idle(self):
        return self.producer.idle and self.follower.caught_up
