"""``OrderedWampMQ``: Buildbot's MQ API over the sequencer's stream.

The I/O shell around the pure parts: produced messages go to the
``Producer`` and are submitted (one call in flight); what the session says -
joined, left, stream events, replay answers - goes to the ``StreamFollower``,
whose actions are carried out here: deliver to the local consumers
(``ConsumerRegistry``), call replay, log, retry later.
"""

import uuid

from autobahn.wamp.exception import ApplicationError
from autobahn.wamp.types import SubscribeOptions
from twisted.internet import defer
from twisted.internet import task
from twisted.logger import Logger
from twisted.python import log

from buildbot.mq import base
from buildbot.util import service
from buildbot.util import tuplematch

from buildbot_mq_ordered import config as mqconfig
from buildbot_mq_ordered import wire
from buildbot_mq_ordered.consumers import ConsumerRegistry
from buildbot_mq_ordered.follower import Deliver
from buildbot_mq_ordered.follower import Replay
from buildbot_mq_ordered.follower import Report
from buildbot_mq_ordered.follower import RetryLater
from buildbot_mq_ordered.follower import StreamFollower
from buildbot_mq_ordered.producer import Producer
from buildbot_mq_ordered.session import NO_SEQUENCER
from buildbot_mq_ordered.session import RouterLink
from buildbot_mq_ordered.session import set_log_level

stop_log = Logger(namespace='ordered-wamp')
# seconds between info() calls while joined: the head tells of positions
# whose events never came, and a router whose sequencer stopped leading is
# found out even by a master that only consumes
HEARTBEAT = 5.0

# errors of a call that say the connection went, not that the sequencer refused
CONNECTION_ERRORS = (ApplicationError.CANCELED, 'wamp.close.transport_lost',
                     NO_SEQUENCER)
# keys whose change means a new connection
CONNECTION_KEYS = ('router_url', 'realm', 'initial_retry_delay', 'max_retry_delay',
                   'retry_delay_growth', 'retry_delay_jitter', 'authid', 'secret',
                   'secret_file', 'ca_file')


def error_text(error):
    """What an ApplicationError says, without autobahn's repr around it."""
    return ' '.join(str(a) for a in error.args) or error.error


def report(actions):
    """Log the Reports among a core's actions, as Buildbot logs."""
    for a in actions:
        if isinstance(a, Report):
            if a.level == 'error':
                log.err(a.error(a.text))
            else:
                log.msg(a.text)


class OrderedWampMQ(service.ReconfigurableServiceMixin, base.MQBase):

    def __init__(self):
        super().__init__()
        self.options = None
        # one producer identity per MQ instance: the sequencer de-duplicates on it
        self.producer_id = uuid.uuid4().hex
        self.producer = Producer()
        self.follower = StreamFollower(backoff=self._replay_backoff)
        self.registry = ConsumerRegistry(self.invokeQref)
        self.link = None
        # the joined session, once the sequencer's info() placed us in its stream
        self.session = None
        # (pos, seq) of the message being delivered, while a callback runs
        self.delivery = None
        self.delivered = 0
        self.foreign_events = 0
        self._flush_scheduled = False
        self._heartbeat = None        # LoopingCall of info() while joined
        self._ready = False           # startConsuming no longer waits for a join
        self._ready_waiters = []
        self._idle_waiters = []
        self._link_lock = defer.DeferredLock()
        self._stopping = False
        self._timers = set()      # retry timers, cancelled at stop

    @property
    def stats(self):
        p, f = self.producer, self.follower
        return {'produced': p.produced, 'rejected': p.rejected, 'batches': p.batches,
                'outbox_dropped': p.outbox.dropped, 'delivered': self.delivered,
                'skipped': f.skipped, 'foreign_events': self.foreign_events,
                'stream_changes': f.stream_changes,
                'other_stream_events': f.other_stream_events}

    @property
    def outbox(self):
        return self.producer.outbox

    @property
    def stream_id(self):
        return self.follower.stream_id

    # -- configuration and lifecycle ---------------------------------------

    def reconfigServiceWithBuildbotConfig(self, new_config):
        old, self.options = self.options, mqconfig.resolve(new_config.mq)
        set_log_level(self.options['wamp_debug_level'])
        self.producer.outbox.max_messages = self.options['max_outbox']
        self.follower.capacity = self.options['reorder_buffer_size']
        if old is not None and self.running and any(
                old[k] != self.options[k] for k in CONNECTION_KEYS):
            log.msg("ordered-wamp: router connection settings changed; reconnecting")
            self._restart_link().addErrback(
                log.err, "ordered-wamp: reconnecting after a reconfig failed")
        return super().reconfigServiceWithBuildbotConfig(new_config)

    @defer.inlineCallbacks
    def startService(self):
        self._stopping = False
        yield super().startService()
        yield self._start_link()

    # the link is started, restarted (reconfig) and stopped one at a time,
    # under _link_lock; once the service stops, a restart does nothing

    def _start_link(self):
        return self._link_lock.run(self._start_link_now)

    def _restart_link(self):
        return self._link_lock.run(self._restart_link_now)

    @defer.inlineCallbacks
    def _start_link_now(self):
        if self._stopping or not self.running:
            return
        opts = self.options
        retry = {k: opts[k] for k in ('initial_retry_delay', 'max_retry_delay',
                                      'retry_delay_growth', 'retry_delay_jitter')}
        retry['max_retries'] = -1
        authentication = yield mqconfig.authentication(opts, self)
        if self._stopping:
            return
        self.link = RouterLink(opts['router_url'], opts['realm'], self._joined, self._left,
                               retry, authentication=authentication,
                               ca_file=opts['ca_file'], authid=opts['authid'],
                               on_shutdown=self._let_start_finish)
        self.link.start().addErrback(log.err, "ordered-wamp: router link failed")

    @defer.inlineCallbacks
    def _restart_link_now(self):
        if self._stopping or not self.running:
            return
        yield self._stop_link_now()
        yield self._start_link_now()

    @defer.inlineCallbacks
    def _stop_link_now(self):
        link, self.link = self.link, None
        if link is not None:
            yield link.stop()

    def _router(self):
        """The router joined or tried now, or all of them, for what is logged."""
        if self.link is not None:
            return self.link.url
        url = self.options['router_url']
        return url if isinstance(url, str) else ' or '.join(url)

    def _later(self, delay, f):
        """reactor.callLater, cancelled when the service stops."""
        from twisted.internet import reactor
        call = reactor.callLater(delay, lambda: (self._timers.discard(call), f()))
        self._timers.add(call)

    @defer.inlineCallbacks
    def stopService(self):
        from twisted.internet import reactor
        self._stopping = True
        self._give_up_waiting()
        timeout = self.options['shutdown_timeout']
        deadline = reactor.seconds() + timeout
        # only a joined master can have its messages acknowledged: with the
        # router away, waiting would only hold up `buildbot stop`
        if self.session is not None:
            yield self._wait_idle(timeout)
        # callbacks still running may produce: let them finish (as every
        # Buildbot MQ does), then send what they produced
        yield self._deferwaiter.wait()
        if self.session is not None:
            yield self._wait_idle(max(0.0, deadline - reactor.seconds()))
        if len(self.outbox):
            # an error line, not a Failure: an operator's stop is no traceback
            stop_log.error(
                "ordered-wamp: {n} messages were not acknowledged by the sequencer "
                "{when} and are lost", n=len(self.outbox),
                when=(f"within {timeout}s of shutdown" if self.session is not None
                      else "before shutdown (the router was not joined)"))
        yield self._link_lock.run(self._stop_link_now)
        self._stop_heartbeat()
        for call in list(self._timers):
            if call.active():
                call.cancel()
        self._timers.clear()
        yield super().stopService()

    def _let_start_finish(self):
        """The reactor shuts down (``buildbot stop``) before this master ever
        joined: let the start-up that waits in startConsuming finish, so
        Buildbot goes on to stop the master cleanly (a failed start-up is a
        traceback in twistd.log). Nothing will be delivered: it is stopping."""
        if not self._ready_waiters:
            return
        opts = self.options
        stop_log.info(
            "ordered-wamp: stopping before this master ever joined realm '{realm}' at "
            "{url}: Buildbot's start-up goes on without the router so that the "
            "master can stop; nothing was delivered", realm=opts['realm'],
            url=self._router())
        self._become_ready()

    def _give_up_waiting(self):
        """startConsuming waits for the first join: a stopService before it
        fails that wait with a clear error, instead of leaving it pending for
        good (a reactor shutting down goes through _let_start_finish)."""
        if self._ready or not self._ready_waiters:
            return
        waiters, self._ready_waiters = self._ready_waiters, []
        opts = self.options
        for d in waiters:
            d.errback(RuntimeError(
                f"ordered-wamp: stopping before this master ever joined realm "
                f"'{opts['realm']}' at {self._router()}: the consumer never "
                "became effective"))

    def _become_ready(self):
        self._ready = True
        waiters, self._ready_waiters = self._ready_waiters, []
        for d in waiters:
            d.callback(None)

    # -- produce: Producer holds, this submits ----------------------------------

    def produce(self, routingKey, data):
        report(self.producer.produce(routingKey, data, self.options['max_message_size']))
        if not self._flush_scheduled and len(self.outbox):
            self._flush_scheduled = True
            from twisted.internet import reactor
            reactor.callLater(0, self._flush)

    def _flush(self):
        self._flush_scheduled = False
        session = self.session
        if session is None:
            return
        batch = self.producer.next_batch()
        if batch is None:
            return
        try:
            d = session.call(wire.SUBMIT, self.producer_id, batch)
        except Exception as e:  # encoding: produce's checks should make this unreachable
            self.producer.not_sent()
            log.err(e, "ordered-wamp: could not send a batch to the sequencer")
            return
        d.addCallbacks(self._acked, self._submit_failed,
                       callbackArgs=(session,), errbackArgs=(session,))

    def _acked(self, result, session):
        if session is not self.session:
            return   # an answer on a session that left: the next join resubmits
        mark, last_pos = result
        report(self.producer.acked(mark))
        self.follower.on_acked(last_pos)
        self._flush()
        self._check_idle()

    def _submit_failed(self, failure, session):
        if session is not self.session or self._no_sequencer(failure):
            return   # the next join resubmits
        delay = self.options['initial_retry_delay']
        if failure.check(ApplicationError) and failure.value.error not in CONNECTION_ERRORS:
            report(self.producer.refused(self._router(), failure.value.error,
                                         error_text(failure.value), delay))
        else:
            self.producer.not_sent()
            log.msg(f"ordered-wamp: submit failed ({failure.getErrorMessage()}); retrying")
        self._later(delay, self._flush)

    # -- consume: StreamFollower decides, this carries out -----------------------

    def startConsuming(self, callback, filter, persistent_name=None):
        if any(not isinstance(k, str) and k is not None for k in filter):
            raise AssertionError(f"{filter} is not a filter")
        qref = self.registry.add(callback, filter, persistent_name)
        if self._ready:
            return defer.succeed(qref)
        # effective once we know our place in the stream
        d = defer.Deferred()
        self._ready_waiters.append(d)
        d.addCallback(lambda _: qref)
        return d

    @defer.inlineCallbacks
    def _joined(self, session):
        yield session.subscribe(self._on_stream, wire.STREAM,
                                options=SubscribeOptions(details_arg='details'))
        info = yield session.call(wire.INFO)
        if self.link is None or self.link.session is not session:
            return   # left meanwhile
        self.session = session
        self._act(self.follower.on_join(info['stream_id'], info['first_pos'], info['head']))
        if not self._ready:
            self._become_ready()
        self._flush()
        self._heartbeat = task.LoopingCall(self._ask_info, session)
        self._heartbeat.start(HEARTBEAT, now=False).addErrback(
            log.err, "ordered-wamp: the heartbeat failed")

    def _left(self):
        self.session = None
        self._stop_heartbeat()
        self.producer.not_sent()
        self._act(self.follower.on_leave())

    def _stop_heartbeat(self):
        if self._heartbeat is not None and self._heartbeat.running:
            self._heartbeat.stop()
        self._heartbeat = None

    def _ask_info(self, session):
        def answered(info):
            if session is self.session:
                self._act(self.follower.on_info(info['stream_id'], info['first_pos'],
                                                info['head']))

        def failed(f):
            if session is self.session and not self._no_sequencer(f):
                log.msg(f"ordered-wamp: info failed ({f.getErrorMessage()})")
        session.call(wire.INFO).addCallbacks(answered, failed).addErrback(
            log.err, "ordered-wamp: handling an info answer failed")

    def _no_sequencer(self, failure):
        """A call found no sequencer on this router (it stopped leading):
        move on to the next router. True if so."""
        if failure.check(ApplicationError) and failure.value.error == NO_SEQUENCER:
            if self.link is not None:
                self.link.move_on()
            return True
        return False

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
        self._act(self.follower.on_event(*args))

    def _act(self, actions):
        """Carry out what the follower decided, in its order."""
        for a in actions:
            if isinstance(a, Deliver):
                self._deliver(a.entries)
            elif isinstance(a, Replay):
                self._replay(a)
            elif isinstance(a, RetryLater):
                self._later(a.delay, lambda: self._act(self.follower.retry()))
            else:
                report([a])
        self._check_idle()

    def _replay(self, action):
        d = self.session.call(wire.REPLAY, action.first, action.count)
        d.addCallbacks(
            lambda answer: self._act(self.follower.on_replay(action.token, answer)),
            lambda f: self._no_sequencer(f) or self._act(
                self.follower.on_replay_failed(action.token, f.getErrorMessage())))
        d.addErrback(log.err, "ordered-wamp: handling a replay answer failed")

    def _replay_backoff(self, failures):
        opts = self.options
        return min(opts['initial_retry_delay'] * opts['retry_delay_growth'] ** (failures - 1),
                   opts['max_retry_delay'])

    def _deliver(self, entries):
        for pos, seq, key, raw in entries:
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
                                f"undecodable data ({e})")
                        break
                    decoded = True
                self.delivery = (pos, seq)
                self.invokeQref(qref, key, data)
        self.delivery = None
        self.delivered += len(entries)

    # -- idleness (for stopService) ------------------------------------------

    def _is_idle(self):
        return self.producer.idle and self.follower.caught_up

    def _check_idle(self):
        if self._idle_waiters and self._is_idle():
            waiters, self._idle_waiters = self._idle_waiters, []
            for d in waiters:
                if not d.called:
                    d.callback(None)

    def _wait_idle(self, timeout):
        """Wait until everything produced here is sequenced and delivered here."""
        if self._is_idle() or self.options is None:
            return defer.succeed(None)
        from twisted.internet import reactor
        d = defer.Deferred()
        self._idle_waiters.append(d)
        timer = reactor.callLater(timeout, d.callback, None)

        def cancel_timer(result):
            if timer.active():
                timer.cancel()
            return result
        d.addBoth(cancel_timer)
        return d
