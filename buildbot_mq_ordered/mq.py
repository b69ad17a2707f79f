"""``OrderedWampMQ``: Buildbot's MQ API over the sequencer's stream.

The I/O shell around the pure parts: it feeds produced messages to the
``Outbox`` and submits them (one call per reactor turn, one call in flight),
feeds stream events and replay answers to the ``ReorderBuffer``, and hands
what it releases to the local consumers.
"""

import uuid

from autobahn.wamp.exception import ApplicationError
from autobahn.wamp.types import SubscribeOptions
from twisted.internet import defer
from twisted.logger import Logger
from twisted.python import log

from buildbot.mq import base
from buildbot.util import service
from buildbot.util import tuplematch

from buildbot_mq_ordered import config as mqconfig
from buildbot_mq_ordered import wire
from buildbot_mq_ordered.consumers import ConsumerRegistry
from buildbot_mq_ordered.failurerun import FailureRun
from buildbot_mq_ordered.outbox import Outbox
from buildbot_mq_ordered.reorder import ReorderBuffer
from buildbot_mq_ordered.session import RouterLink
from buildbot_mq_ordered.session import set_log_level

# a submit carries at most this many messages / bytes (the router takes 16 MiB)
MAX_BATCH = 2000
MAX_BATCH_BYTES = 4 * 1024 * 1024
stop_log = Logger(namespace='ordered-wamp')

# errors of a call that say the connection went, not that the sequencer refused
CONNECTION_ERRORS = (ApplicationError.CANCELED, 'wamp.close.transport_lost',
                     'wamp.error.no_such_procedure')
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
        self.outbox = Outbox()
        self.buffer = None
        self.registry = ConsumerRegistry(self.invokeQref)
        self.link = None
        # (pos, seq) of the message being delivered, while a callback runs
        self.delivery = None
        self.stats = {'produced': 0, 'rejected': 0, 'delivered': 0, 'batches': 0,
                      'skipped': 0, 'outbox_dropped': 0, 'foreign_events': 0,
                      'stream_changes': 0, 'other_stream_events': 0}
        # the journal whose positions this master follows (None: not joined yet)
        self.stream_id = None
        self._session = None
        self._generation = 0          # bumps on every join: stale replies are ignored
        self._flush_scheduled = False
        self._submitting = False
        self._replaying = False
        self._synced = False
        self._sync_waiters = []
        self._idle_waiters = []
        self._last_acked_pos = 0
        self._submit_failures = FailureRun()
        self._replay_failures = FailureRun()
        self._link_lock = defer.DeferredLock()
        self._stopping = False
        self._timers = set()      # retry timers, cancelled at stop

    # -- configuration and lifecycle ---------------------------------------

    def reconfigServiceWithBuildbotConfig(self, new_config):
        old, self.options = self.options, mqconfig.resolve(new_config.mq)
        set_log_level(self.options['wamp_debug_level'])
        self.outbox.max_messages = self.options['max_outbox']
        if self.buffer is None:
            self.buffer = ReorderBuffer(self.options['reorder_buffer_size'])
        else:
            self.buffer.capacity = self.options['reorder_buffer_size']
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
        authentication = yield self._authentication()
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

    def _later(self, delay, f):
        """reactor.callLater, cancelled when the service stops."""
        from twisted.internet import reactor
        call = reactor.callLater(delay, lambda: (self._timers.discard(call), f()))
        self._timers.add(call)

    @defer.inlineCallbacks
    def _authentication(self):
        """WAMP-CRA settings for autobahn, the secret rendered (never logged)."""
        opts = self.options
        if opts['authid'] is None:
            return None
        if opts['secret_file'] is not None:
            with open(opts['secret_file']) as f:
                secret = f.read().strip()
        else:
            secret = opts['secret']
            if hasattr(secret, 'getRenderingFor'):
                # a Buildbot secret: rendered through the master's providers
                from buildbot.process.properties import Properties
                props = Properties()
                props.master = self.master
                secret = yield props.render(secret)
        return {'wampcra': {'authid': opts['authid'], 'secret': secret}}

    @defer.inlineCallbacks
    def stopService(self):
        from twisted.internet import reactor
        self._stopping = True
        self._give_up_waiting()
        timeout = self.options['shutdown_timeout']
        deadline = reactor.seconds() + timeout
        # only a joined master can have its messages acknowledged: with the
        # router away, waiting would only hold up `buildbot stop`
        if self._session is not None:
            yield self._wait_idle(timeout)
        # callbacks still running may produce: let them finish (as every
        # Buildbot MQ does), then send what they produced
        yield self._deferwaiter.wait()
        if self._session is not None:
            yield self._wait_idle(max(0.0, deadline - reactor.seconds()))
        if len(self.outbox):
            # an error line, not a Failure: an operator's stop is no traceback
            stop_log.error(
                "ordered-wamp: {n} messages were not acknowledged by the sequencer "
                "{when} and are lost", n=len(self.outbox),
                when=(f"within {timeout}s of shutdown" if self._session is not None
                      else "before shutdown (the router was not joined)"))
        yield self._link_lock.run(self._stop_link_now)
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
        if not self._sync_waiters:
            return
        opts = self.options
        stop_log.info(
            "ordered-wamp: stopping before this master ever joined realm '{realm}' at "
            "{url}: Buildbot's start-up goes on without the router so that the "
            "master can stop; nothing was delivered", realm=opts['realm'],
            url=opts['router_url'])
        self._synced = True
        waiters, self._sync_waiters = self._sync_waiters, []
        for d in waiters:
            d.callback(None)

    def _give_up_waiting(self):
        """startConsuming waits for the first join: a stopService before it
        fails that wait with a clear error, instead of leaving it pending for
        good (a reactor shutting down goes through _let_start_finish)."""
        if self._synced or not self._sync_waiters:
            return
        waiters, self._sync_waiters = self._sync_waiters, []
        opts = self.options
        for d in waiters:
            d.errback(RuntimeError(
                f"ordered-wamp: stopping before this master ever joined realm "
                f"'{opts['realm']}' at {opts['router_url']}: the consumer never "
                "became effective"))

    # -- produce ------------------------------------------------------------

    def produce(self, routingKey, data):
        try:
            key, raw, size = wire.encode_message(routingKey, data,
                                                 self.options['max_message_size'])
        except Exception as e:  # produce never raises for the caller
            self.stats['rejected'] += 1
            log.err(wire.MessageRejected(
                f"ordered-wamp: dropped message {routingKey!r}: {e}"))
            return
        self.stats['produced'] += 1
        if self.outbox.add(key, raw, size) is not None:
            self.stats['outbox_dropped'] += 1
            n = self.stats['outbox_dropped']
            if n == 1 or n % 10000 == 0:
                log.err(RuntimeError(
                    f"ordered-wamp: outbox full ({self.outbox.max_messages} messages "
                    f"unacknowledged): dropped the oldest; {n} dropped so far"))
        if not self._flush_scheduled:
            self._flush_scheduled = True
            from twisted.internet import reactor
            reactor.callLater(0, self._flush)

    def _flush(self):
        self._flush_scheduled = False
        session = self._session
        if self._submitting or session is None or not self._synced or not len(self.outbox):
            return
        batch = self.outbox.batch(MAX_BATCH, MAX_BATCH_BYTES)
        self._submitting = True
        self.stats['batches'] += 1
        gen = self._generation
        try:
            d = session.call(wire.SUBMIT, self.producer_id, batch)
        except Exception as e:  # encoding: produce's checks should make this unreachable
            self._submitting = False
            log.err(e, "ordered-wamp: could not send a batch to the sequencer")
            return
        d.addCallbacks(self._acked, self._submit_failed,
                       callbackArgs=(gen,), errbackArgs=(gen,))

    def _acked(self, result, gen):
        if gen != self._generation:
            return
        self._submitting = False
        failures = self._submit_failures.succeeded()
        if failures:
            log.msg(f"ordered-wamp: the sequencer accepts submits again "
                    f"(after {failures} refused)")
        mark, last_pos = result
        self.outbox.ack(mark)
        if last_pos:
            self._last_acked_pos = max(self._last_acked_pos, last_pos)
        if len(self.outbox):
            self._flush()
        self._check_idle()

    def _submit_failed(self, failure, gen):
        if gen != self._generation:
            return
        self._submitting = False
        if self._session is None:
            return  # the next join resubmits
        delay = self.options['initial_retry_delay']
        refused = failure.check(ApplicationError) and \
            failure.value.error not in CONNECTION_ERRORS
        if not refused:
            log.msg(f"ordered-wamp: submit failed ({failure.getErrorMessage()}); retrying")
        elif self._submit_failures.failed():
            # the sequencer said no (its journal cannot be written, ...): the
            # cluster stands still, which an operator must see, once per run
            log.err(RuntimeError(
                f"ordered-wamp: the sequencer at {self.options['router_url']} refused a "
                f"submit ({failure.value.error}: {error_text(failure.value)}); "
                f"{len(self.outbox)} messages wait in the outbox, nothing is lost; "
                f"retrying every {delay}s ({self._submit_failures.count} refused in a row)"))
        self._later(delay, self._flush)

    # -- consume ------------------------------------------------------------

    def startConsuming(self, callback, filter, persistent_name=None):
        if any(not isinstance(k, str) and k is not None for k in filter):
            raise AssertionError(f"{filter} is not a filter")
        qref = self.registry.add(callback, filter, persistent_name)
        if self._synced:
            return defer.succeed(qref)
        # effective once we know our place in the stream
        d = defer.Deferred()
        self._sync_waiters.append(d)
        d.addCallback(lambda _: qref)
        return d

    # -- the session --------------------------------------------------------

    @defer.inlineCallbacks
    def _joined(self, session):
        self._generation += 1
        self._submitting = False
        self._replaying = False
        gen = self._generation
        yield session.subscribe(self._on_stream, wire.STREAM,
                                options=SubscribeOptions(details_arg='details'))
        info = yield session.call(wire.INFO)
        if gen != self._generation:
            return
        self._session = session
        self._sync(info['stream_id'], info['first_pos'], info['head'])
        self._flush()

    def _left(self):
        self._generation += 1
        self._session = None
        self._submitting = False
        self._replaying = False

    def _sync(self, stream_id, first_pos, head):
        buf = self.buffer
        if not buf.started:
            self.stream_id = stream_id
            self._deliver(buf.start(head + 1))
            self._synced = True
            waiters, self._sync_waiters = self._sync_waiters, []
            for d in waiters:
                d.callback(None)
        elif stream_id != self.stream_id:
            self._new_stream(stream_id, first_pos, head)
        elif head < buf.next_pos - 1:
            # same stream, shorter: a journal restored from an older copy
            log.err(RuntimeError(
                f"ordered-wamp: stream {stream_id} ends at position {head}, before "
                f"position {buf.next_pos - 1} this master already delivered; "
                "continuing after its end"))
            self.buffer = ReorderBuffer(buf.capacity, next_pos=head + 1)
        else:
            buf.saw(head)
        self._fill_holes()

    def _new_stream(self, stream_id, first_pos, head):
        """The router's journal is not the one this master followed (lost,
        replaced): start over on the new stream from its first retained
        position; the outbox is resubmitted by the caller's flush."""
        buf = self.buffer
        missed = max(buf.highest_seen, buf.next_pos - 1) - (buf.next_pos - 1)
        log.err(RuntimeError(
            f"ordered-wamp: the sequencer now serves stream {stream_id}, not stream "
            f"{self.stream_id} that this master followed up to position "
            f"{buf.next_pos - 1} (its journal was lost or replaced): "
            f"{missed} known positions of the old stream after that can no longer be "
            f"delivered; delivering the new stream from its position {first_pos}"))
        self.stats['stream_changes'] += 1
        self.stream_id = stream_id
        self.buffer = ReorderBuffer(buf.capacity, next_pos=first_pos)
        self.buffer.saw(head)
        # positions acknowledged on the old stream mean nothing on this one
        self._last_acked_pos = 0
        self._check_idle()

    def _on_stream(self, *args, details=None, **kwargs):
        if details is None or details.publisher_authrole != wire.SEQUENCER_ROLE:
            self.stats['foreign_events'] += 1
            if self.stats['foreign_events'] in (1, 10, 100, 1000, 10000):
                log.msg("ordered-wamp: ignored a stream event not published by the sequencer "
                        f"({self.stats['foreign_events']} so far)")
            return
        if len(args) != 2 or kwargs:
            log.msg("ordered-wamp: ignored a malformed stream event")
            return
        stream_id, entries = args
        if stream_id != self.stream_id:
            # late events of an old stream, or of a new one before _sync
            # switched to it (replay brings those back then)
            self.stats['other_stream_events'] += 1
            return
        if not isinstance(entries, list):
            log.msg("ordered-wamp: ignored a malformed stream event")
            return
        good = [e for e in entries if wire.is_entry(e)]
        if len(good) != len(entries):
            log.msg(f"ordered-wamp: ignored {len(entries) - len(good)} malformed stream entries")
        self._deliver(self.buffer.offer(good))
        self._fill_holes()

    def _fill_holes(self):
        if self._replaying or self._session is None or self.buffer.missing() is None:
            return
        self._replaying = True
        gen = self._generation
        d = self._replay(self._session, gen)

        def done(res):
            if gen == self._generation:
                self._replaying = False
            return res
        d.addBoth(done)
        d.addCallbacks(self._replay_done, self._replay_failed,
                       callbackArgs=(gen,), errbackArgs=(gen,))

    def _replay_done(self, _, gen):
        if gen == self._generation:
            self._replay_failures.succeeded()

    def _replay_failed(self, failure, gen):
        if gen != self._generation or self._session is None:
            return   # the next join replays
        # the sequencer is busy or failed: try again, later each time, instead
        # of waiting for the next stream event (there may be none)
        failures = self._replay_failures
        failures.failed()
        delay = min(self.options['initial_retry_delay'] *
                    self.options['retry_delay_growth'] ** (failures.count - 1),
                    self.options['max_retry_delay'])
        log.msg(f"ordered-wamp: replay failed ({failure.getErrorMessage()}); "
                f"retrying in {delay:.1f}s")
        self._later(delay, self._fill_holes)

    @defer.inlineCallbacks
    def _replay(self, session, gen):
        while gen == self._generation:
            gap = self.buffer.missing()
            if gap is None:
                return
            first, last = gap
            stream_id, first_pos, head, entries = yield session.call(
                wire.REPLAY, first, min(last - first + 1, wire.MAX_REPLAY))
            if gen != self._generation:
                return
            if stream_id != self.stream_id:
                self._new_stream(stream_id, first_pos, head)
                continue
            buf = self.buffer
            before = buf.next_pos
            if head < buf.highest_seen:
                log.msg(f"ordered-wamp: ignored stream positions above {head}, "
                        "the sequencer's head: not published by the sequencer")
                buf.forget_above(head)
            if first_pos > first:
                end = min(first_pos - 1, last)
                lost = end - first + 1
                self.stats['skipped'] += lost
                log.err(RuntimeError(
                    f"ordered-wamp: stream positions {first}..{end} ({lost} messages) are "
                    "no longer in the sequencer's history (retention exceeded); skipped"))
                self._deliver(buf.skip_to(end + 1))
            self._deliver(buf.offer([e for e in entries if wire.is_entry(e)]))
            if buf.next_pos == before and buf.missing() == gap:
                # the sequencer has nothing for a hole it should have: do not stall
                log.err(RuntimeError(
                    f"ordered-wamp: the sequencer returned nothing for stream positions "
                    f"{first}..{last}; skipped"))
                self.stats['skipped'] += last - first + 1
                self._deliver(buf.skip_to(last + 1))

    def _deliver(self, entries):
        if not entries:
            return
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
        self.stats['delivered'] += len(entries)
        self._check_idle()

    # -- idleness (for stopService) ------------------------------------------

    def _is_idle(self):
        return (not len(self.outbox) and not self._submitting and
                (self.buffer is None or self.buffer.next_pos is None or
                 self.buffer.next_pos > self._last_acked_pos))

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
