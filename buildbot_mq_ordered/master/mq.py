"""``OrderedWampMQ``: Buildbot's MQ API over the sequencer's stream.

Buildbot's API and the wiring: produced messages go to the ``Producer``
and are submitted from here (one call in flight); the ``StreamReader``
follows the stream on the joined session (its decisions are the
``StreamFollower``'s) and hands what it releases to ``_deliver``, which
dispatches to the local consumers (``ConsumerRegistry``). ``RouterLink``
keeps a session joined; start, reconfig and stop go through here.
"""

import uuid

from autobahn.wamp.exception import ApplicationError
from twisted.internet import defer
from twisted.logger import Logger
from twisted.python import log

from buildbot.mq import base
from buildbot.util import service
from buildbot.util import tuplematch

from buildbot_mq_ordered import wire
from buildbot_mq_ordered.master import config as mqconfig
from buildbot_mq_ordered.master.actions import report
from buildbot_mq_ordered.master.consumers import ConsumerRegistry
from buildbot_mq_ordered.master.follower import StreamFollower
from buildbot_mq_ordered.master.link import RouterLink
from buildbot_mq_ordered.master.link import set_log_level
from buildbot_mq_ordered.master.producer import Producer
from buildbot_mq_ordered.master.report import MasterReporter
from buildbot_mq_ordered.master.streamreader import StreamReader

stop_log = Logger(namespace='ordered-wamp')
# errors of a call that say the connection went, not that the sequencer refused
CONNECTION_ERRORS = (ApplicationError.CANCELED, 'wamp.close.transport_lost',
                     wire.NO_SEQUENCER)
# keys whose change means a new connection
CONNECTION_KEYS = ('router_url', 'realm', 'initial_retry_delay', 'max_retry_delay',
                   'retry_delay_growth', 'retry_delay_jitter', 'authid', 'secret',
                   'secret_file', 'ca_file')


def error_text(error):
    """What an ApplicationError says, without autobahn's repr around it."""
    return ' '.join(str(a) for a in error.args) or error.error


class OrderedWampMQ(service.ReconfigurableServiceMixin, base.MQBase):

    def __init__(self):
        super().__init__()
        self.options = None
        # one producer identity per MQ instance: the sequencer de-duplicates on it
        self.producer_id = uuid.uuid4().hex
        self.producer = Producer()
        self.follower = StreamFollower(backoff=self._replay_backoff)
        self.reader = StreamReader(self.follower, self._deliver, self._later, self._move_on,
                                   after=self._check_idle)
        self.registry = ConsumerRegistry(self.invokeQref)
        self.reporter = MasterReporter(self)   # to the router's monitor
        self.link = None
        # (pos, seq) of the message being delivered, while a callback runs
        self.delivery = None
        self.delivered = 0
        self._flush_scheduled = False
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
                'skipped': f.skipped, 'foreign_events': self.reader.foreign_events,
                'stream_changes': f.stream_changes,
                'other_stream_events': f.other_stream_events}

    @property
    def outbox(self):
        return self.producer.outbox

    @property
    def session(self):
        """The joined session, once the sequencer's info() placed us in its stream."""
        return self.reader.session

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
        authentication = yield mqconfig.authentication(opts, self)
        if self._stopping:
            return
        self.link = RouterLink(opts['router_url'], opts['realm'], self._joined, self._left,
                               mqconfig.reconnect_backoff(opts), authentication=authentication,
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
        self.reporter.stop(final=True)
        yield self._link_lock.run(self._stop_link_now)
        if self.reader.session is not None:
            self.reader.leave()
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
        if session is not self.session or self.reader.no_sequencer(failure):
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
        placed = yield self.reader.join(
            session, lambda: self.link is not None and self.link.session is session)
        if placed:
            if not self._ready:
                self._become_ready()
            if not self._stopping:   # its last report may be sent already
                self.reporter.start(session)
            self._flush()

    def _left(self):
        self.producer.not_sent()
        self.reporter.stop()
        self.reader.leave()

    def _move_on(self):
        if self.link is not None:
            self.link.move_on()

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
