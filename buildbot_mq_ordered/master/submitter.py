"""``Submitter``: the I/O of a ``Producer`` on the joined session."""

from autobahn.wamp.exception import ApplicationError
from twisted.python import log

from buildbot_mq_ordered import wire
from buildbot_mq_ordered.master.acknowledged import submit_answer
from buildbot_mq_ordered.master.actions import RetryLater
from buildbot_mq_ordered.master.actions import report
from buildbot_mq_ordered.master.timers import Timers

# errors of a call that say the connection went, not that the sequencer
# refused (a router without a sequencer is the reader's no_sequencer)
CONNECTION_ERRORS = (ApplicationError.CANCELED, 'wamp.close.transport_lost')


def error_text(error):
    """What an ApplicationError says, without autobahn's repr around it."""
    return ' '.join(str(a) for a in error.args) or error.error


class Submitter:
    """Submits what the ``Producer`` holds on the session the
    ``StreamReader`` joined, one batch in flight: an acknowledgement sends
    the next batch; a refusal (logged as the Producer says) is tried again
    after the Producer's backoff, and nothing produced meanwhile is sent
    before; a call that lost its connection is tried again after the
    backoff's first delay; an answer on a session that left is ignored (the
    next join resubmits).

    The I/O shell around the pure Producer, as the StreamReader is around
    the StreamFollower. The MQ owns it: ``produce`` calls ``soon``, a join
    ``flush``, the stop ``stop``; it is told of each acknowledgement
    through ``on_acked(last_pos)``, and ``where()`` names the router for
    what is logged; ``first_retained()`` is the journal's oldest position,
    as the follower last heard."""

    def __init__(self, producer, producer_id, reader, where, on_acked=lambda last_pos: None,
                 clock=None, first_retained=lambda: 0):
        self.producer = producer
        self.producer_id = producer_id
        self.reader = reader      # .session (joined, placed), .no_sequencer(failure)
        self.where = where
        self.on_acked = on_acked
        self.first_retained = first_retained
        self.timers = Timers(clock)
        self._scheduled = False
        self._backing_off = None  # the retry of a refused submit, until it is due

    def soon(self):
        """Flush at the next turn of the reactor: what a burst of produce
        calls holds goes in one batch. Not while a refused submit waits."""
        if not self._scheduled and len(self.producer.outbox):
            self._scheduled = True
            self.timers.clock.callLater(0, self._turn)

    def _turn(self):
        self._scheduled = False
        if self._backing_off is None:
            self.flush()

    def flush(self):
        """Submit the next batch, unless one is in flight (or nothing waits).
        A join calls it at once, backing off or not: a new session."""
        self._scheduled = False
        session = self.reader.session
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
        d.addCallbacks(self._acked, self._failed,
                       callbackArgs=(session,), errbackArgs=(session,))

    def stop(self):
        self.timers.cancel()
        self._backing_off = None

    def _acked(self, result, session):
        if session is not self.reader.session:
            return   # an answer on a session that left: the next join resubmits
        answer = submit_answer(result)
        if answer is None:
            # not this release's sequencer: what was sent stays in the outbox
            self._refused('a malformed answer', wire.shown(repr(result)))
            return
        self._stop_backing_off()
        report(self.producer.acked(answer, self.producer_id, self.first_retained()))
        self.on_acked(answer.last_pos)
        self.flush()

    def _failed(self, failure, session):
        if session is not self.reader.session or self.reader.no_sequencer(failure):
            return   # the next join resubmits
        if failure.check(ApplicationError) and failure.value.error not in CONNECTION_ERRORS:
            self._refused(failure.value.error, error_text(failure.value))
        else:
            self.producer.not_sent()
            log.msg(f"ordered-wamp: submit failed ({wire.shown(failure.getErrorMessage())}); "
                    "retrying")
            self.timers.later(self.producer.backoff.initial, self.flush)

    def _refused(self, error, reason):
        actions = self.producer.refused(self.where(), error, reason)
        report(actions)
        for a in actions:
            if isinstance(a, RetryLater):
                self._back_off(a.delay)

    def _back_off(self, delay):
        self._stop_backing_off()
        self._backing_off = self.timers.later(delay, self._backed_off)

    def _backed_off(self):
        self._backing_off = None
        self.flush()

    def _stop_backing_off(self):
        if self._backing_off is not None:
            self.timers.cancel_one(self._backing_off)
            self._backing_off = None
