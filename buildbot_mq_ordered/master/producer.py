"""The producer half of a master: encode, hold until acknowledged, batch.

Pure: the ``Submitter`` does the submit calls and logs the reports returned here.
One submit is in flight at a time, so batches reach the sequencer in
producer order on the one connection; after a reconnect the outbox is
resubmitted from its oldest message (the sequencer drops what it had).
"""

from buildbot_mq_ordered import wire
from buildbot_mq_ordered.master.acknowledged import Acknowledged
from buildbot_mq_ordered.master.actions import Report
from buildbot_mq_ordered.master.actions import RetryLater
from buildbot_mq_ordered.master.outbox import Outbox
from buildbot_mq_ordered.util.backoff import Backoff
from buildbot_mq_ordered.util.failurerun import FailureRun


class Producer:
    """A master's produced messages until the sequencer acknowledges them:
    it encodes and checks each (``produce``), holds them in its ``Outbox``,
    hands out one batch at a time and says what the answer means. The MQ
    calls ``produce``; the ``Submitter`` sends the batches and reports the
    answers; both log the reports returned. ``backoff(refusals in a row)``:
    seconds before a refused submit is tried again."""

    def __init__(self, max_outbox=100000, backoff=Backoff(0.5, 1.5, 10.0)):
        self.outbox = Outbox(max_outbox)
        self.backoff = backoff
        self.produced = 0
        self.rejected = 0
        self.batches = 0
        self.in_flight = False
        self.refusals = FailureRun()   # submits the sequencer said no to, in a row
        # the highest producer_seq ever submitted: no true acknowledgement
        # goes beyond it
        self.sent = 0
        self._forged = False           # in a run of acknowledgements beyond it
        self.acknowledged = Acknowledged()

    @property
    def idle(self):
        return not len(self.outbox) and not self.in_flight

    def produce(self, routing_key, data, max_message_size):
        try:
            key, raw, size = wire.encode_message(routing_key, data, max_message_size)
        except Exception as e:  # produce never raises for the caller
            self.rejected += 1
            return [Report('error', f"ordered-wamp: dropped message "
                                    f"{wire.shown(repr(routing_key))}: {wire.shown(str(e))}",
                           wire.MessageRejected)]
        self.produced += 1
        if self.outbox.add(key, raw, size) is None:
            return []
        n = self.outbox.dropped
        if n == 1 or n % 10000 == 0:
            return [Report('error', (
                f"ordered-wamp: outbox full ({self.outbox.max_messages} messages "
                f"unacknowledged): dropped the oldest; {n} dropped so far"))]
        return []

    def next_batch(self):
        """The batch to submit now, or None (one in flight, or nothing to send)."""
        if self.in_flight or not len(self.outbox):
            return None
        self.in_flight = True
        self.batches += 1
        batch = self.outbox.batch(wire.MAX_BATCH, wire.MAX_BATCH_BYTES)
        self.sent = max(self.sent, batch[-1][0])
        return batch

    def acked(self, answer, producer_id, first_retained=0):
        """The sequencer has sequenced producer_id's messages up to
        answer.mark (a ``SubmitAnswer``): they leave the outbox, but never
        one that was not sent. first_retained: the journal's oldest
        position, as the follower last heard."""
        self.in_flight = False
        mark = answer.mark
        out = self._forged_mark(mark, producer_id)
        out += self.acknowledged.answered(answer, self.sent, producer_id, first_retained)
        self.outbox.ack(min(mark, self.sent))
        failures = self.refusals.succeeded()
        if failures:
            out.append(Report('info', f"ordered-wamp: the sequencer accepts submits again "
                                      f"(after {failures} refused)"))
        return out

    def _forged_mark(self, mark, producer_id):
        """A mark beyond what this master sent is another client's, submitting
        under this master's producer id: an error, once per run of them."""
        forged, self._forged = self._forged, mark > self.sent
        if not self._forged or forged:
            return []
        return [Report('error', (
            f"ordered-wamp: the sequencer acknowledged producer id {producer_id} up to "
            f"producer sequence number {mark}, but this master sent only up to "
            f"{self.sent}: another client submits under this master's producer id, "
            f"and the sequencer drops this master's messages numbered up to {mark} "
            "as duplicates (lost). A router with --secret-file binds producer ids to "
            "the caller's authid"))]

    def refused(self, where, error, reason):
        """The sequencer said no (its journal cannot be written, ...): the
        cluster stands still, which an operator must see, once per run; the
        submit is tried again after the backoff."""
        self.in_flight = False
        report = self.refusals.failed()
        delay = self.backoff(self.refusals.count)
        if not report:
            return [RetryLater(delay)]
        return [Report('error', (
            f"ordered-wamp: the sequencer at {where} refused a submit ({error}: "
            f"{wire.shown(reason)}); {len(self.outbox)} messages wait in the outbox, "
            f"nothing is lost; retrying with backoff (next in {delay:.3g}s, "
            f"{self.refusals.count} refused in a row)")), RetryLater(delay)]

    def not_sent(self):
        """The submit in flight ended without an answer (connection lost)."""
        self.in_flight = False
