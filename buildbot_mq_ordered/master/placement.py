"""Where a master stands in the sequencer's stream, and what the
sequencer's ``info()`` means for it. Pure: owned by the ``StreamFollower``."""

from buildbot_mq_ordered import wire
from buildbot_mq_ordered.master.actions import Report
from buildbot_mq_ordered.master.actions import delivering
from buildbot_mq_ordered.master.lineage import UNKNOWN
from buildbot_mq_ordered.master.lineage import VALID
from buildbot_mq_ordered.master.lineage import Lineage
from buildbot_mq_ordered.master.lineage import rewritten
from buildbot_mq_ordered.master.reorder import ReorderBuffer


def after_head(first_pos, head):
    """A master delivers what is produced after it joined."""
    return head + 1


class Placement:
    """Which stream this master follows (its id) and where it stands in it:
    the reorder buffer of its positions, the terms they came under (its
    ``Lineage``), and the highest position its own submits were
    acknowledged at.

    ``place`` decides what an ``info()`` answer (stream id, first retained
    position, head, term history) means: the first placement, a new stream
    (start over from its first retained position), a new term (a rewritten
    tail is delivered again from where it was rewritten), a shorter stream
    (continue after its end), or only a head to catch up to; ``sort``
    tells entries of the journal's history from others, ``offer`` takes
    the former; ``skip`` gives up on positions lost for good. All return the actions. The
    ``StreamFollower`` calls them (on every join and heartbeat, on events
    and replay answers) and asks for the replays."""

    def __init__(self, capacity=10000, start=after_head):
        # start(first_pos, head): the first position to deliver, at the first join
        self.start = start
        self.buffer = ReorderBuffer(capacity)
        # the journal whose positions this master follows (None: never joined)
        self.stream_id = None
        # the highest position this master's own submits were acknowledged
        # at: until it is delivered here, what was produced here is in flight
        self.awaited_pos = 0
        self.lineage = Lineage()
        # the journal's oldest position, as it last said
        self.first_retained = 0
        self.stream_changes = 0
        self.skipped = 0
        self.rewrites = 0        # rewritten tails delivered again

    @property
    def caught_up(self):
        """Everything this master's submits were acknowledged at is delivered."""
        return not self.buffer.started or self.buffer.next_pos > self.awaited_pos

    def acked(self, last_pos):
        """This master's submit was acknowledged up to stream position last_pos."""
        if last_pos:
            self.awaited_pos = max(self.awaited_pos, last_pos)

    def place(self, stream_id, first_pos, head, history=None):
        """An info() answer; history: the journal's terms (None: not told)."""
        buf = self.buffer
        if not buf.started:
            self.stream_id = stream_id
            self.first_retained = first_pos
            self.lineage.learn(history)
            start = self.start(first_pos, head)
            self.lineage.passed(1, start - 1)
            out = self._release(buf.start(start))
            buf.saw(head)
            return out
        if stream_id != self.stream_id:
            return self.new_stream(stream_id, first_pos, head, history)
        self.first_retained = first_pos
        if history is not None and history[-1][0] != self.lineage.current:
            if self.lineage.knows(history[-1][0]):
                return []   # an answer older than what this master knows
            return self._reconcile(history, head)
        if head < buf.next_pos - 1:
            return self._shorter(head)
        buf.saw(head)
        return []

    def sort(self, entries):
        """(those of the journal's history as known here, those of a term not known)."""
        judge = self.lineage.judge
        verdicts = [judge(e) for e in entries]
        return ([e for e, v in zip(entries, verdicts) if v == VALID],
                [e for e, v in zip(entries, verdicts) if v == UNKNOWN])

    def offer(self, entries):
        """Entries of the journal's history (``sort``) to the buffer; returns
        the actions (those now deliverable)."""
        return self._release(self.buffer.offer(entries))

    def skip(self, first, last, why):
        """Give up on positions first..last (lost for good: ``why``)."""
        lost = last - first + 1
        self.skipped += lost
        self.lineage.passed(first, last)
        return [Report('error', f"ordered-wamp: stream positions {first}..{last} "
                                f"({lost} messages) {why}; skipped")] + \
            self._release(self.buffer.skip_to(last + 1))

    def new_stream(self, stream_id, first_pos, head, history=None):
        """The sequencer's journal is not the one followed so far (lost,
        replaced): start over on the new stream from its first retained
        position; the MQ resubmits its outbox when it flushes."""
        buf = self.buffer
        done = buf.next_pos - 1
        missed = max(buf.highest_seen, done) - done
        report = Report('error', (
            f"ordered-wamp: the sequencer now serves stream {wire.shown(stream_id)}, not "
            f"stream {wire.shown(self.stream_id)} that this master followed up to "
            f"position {done} (its journal was lost or replaced): {missed} known positions of the "
            "old stream after that can no longer be delivered; delivering the new "
            f"stream from its position {first_pos}"))
        self.stream_changes += 1
        self.stream_id = stream_id
        self.first_retained = first_pos
        self.lineage.reset()
        self.lineage.learn(history)
        self.lineage.passed(1, first_pos - 1)
        self.buffer = ReorderBuffer(buf.capacity, next_pos=first_pos)
        self.buffer.saw(head)
        # positions acknowledged on the old stream mean nothing on this one
        self.awaited_pos = 0
        return [report]

    def _shorter(self, head):
        buf = self.buffer
        report = Report('error', (
            f"ordered-wamp: stream {wire.shown(self.stream_id)} ends at position {head}, "
            f"before position {buf.next_pos - 1} this master already delivered; "
            "continuing after its end"))
        self.buffer = ReorderBuffer(buf.capacity, next_pos=head + 1)
        self.lineage.rewind(head + 1)
        # acknowledged positions beyond the end were lost with it
        self.awaited_pos = min(self.awaited_pos, head)
        return [report]

    def _reconcile(self, history, head):
        """The journal's history has a term not known here: from where it
        left the terms this master went through (if it did), the tail is
        delivered again; held entries of another history are dropped."""
        lineage, buf = self.lineage, self.buffer
        lineage.learn(history)
        done = buf.next_pos - 1
        first = lineage.divergence(done)
        out = []
        if first is not None:
            out.append(rewritten(
                wire.shown(self.stream_id), first, done, lineage.delivered_between(first, done),
                max(0, head - first + 1), head, lineage.current))
            lineage.rewind(first)
            self.rewrites += 1
        # this master's acknowledged positions beyond the head went with the tail
        self.awaited_pos = min(self.awaited_pos, head)
        self.buffer = ReorderBuffer(buf.capacity, next_pos=first or buf.next_pos)
        self.buffer.saw(head)
        valid, _ = self.sort(buf.take_held())
        return out + self.offer(valid)

    def _release(self, entries):
        """Entries delivered now, as actions; their terms are kept."""
        self.lineage.delivered(entries)
        return delivering(entries)
