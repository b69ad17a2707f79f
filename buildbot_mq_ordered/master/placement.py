"""Where a master stands in the sequencer's stream, and what the
sequencer's ``info()`` means for it. Pure: owned by the ``StreamFollower``."""

from buildbot_mq_ordered import wire
from buildbot_mq_ordered.master.actions import Report
from buildbot_mq_ordered.master.actions import delivering
from buildbot_mq_ordered.master.reorder import ReorderBuffer


def after_head(first_pos, head):
    """A master delivers what is produced after it joined."""
    return head + 1


class Placement:
    """Which stream this master follows (its id) and where it stands in it:
    the reorder buffer of its positions, and the highest position its own
    submits were acknowledged at.

    ``place`` decides what an ``info()`` answer (stream id, first retained
    position, head) means: the first placement, a new stream (start over
    from its first retained position), a shorter one (continue after its
    end), or only a head to catch up to; ``skip`` gives up on positions
    lost for good. Both return the actions. The ``StreamFollower`` calls
    them (on every join and heartbeat, on replay answers) and asks for the
    replays."""

    def __init__(self, capacity=10000, start=after_head):
        # start(first_pos, head): the first position to deliver, at the first join
        self.start = start
        self.buffer = ReorderBuffer(capacity)
        # the journal whose positions this master follows (None: never joined)
        self.stream_id = None
        # the highest position this master's own submits were acknowledged
        # at: until it is delivered here, what was produced here is in flight
        self.awaited_pos = 0
        self.stream_changes = 0
        self.skipped = 0

    @property
    def caught_up(self):
        """Everything this master's submits were acknowledged at is delivered."""
        return not self.buffer.started or self.buffer.next_pos > self.awaited_pos

    def acked(self, last_pos):
        """This master's submit was acknowledged up to stream position last_pos."""
        if last_pos:
            self.awaited_pos = max(self.awaited_pos, last_pos)

    def place(self, stream_id, first_pos, head):
        buf = self.buffer
        if not buf.started:
            self.stream_id = stream_id
            out = delivering(buf.start(self.start(first_pos, head)))
            buf.saw(head)
            return out
        if stream_id != self.stream_id:
            return self.new_stream(stream_id, first_pos, head)
        if head < buf.next_pos - 1:
            return self._shorter(head)
        buf.saw(head)
        return []

    def skip(self, first, last, why):
        """Give up on positions first..last (lost for good: ``why``)."""
        lost = last - first + 1
        self.skipped += lost
        return [Report('error', f"ordered-wamp: stream positions {first}..{last} "
                                f"({lost} messages) {why}; skipped")] + \
            delivering(self.buffer.skip_to(last + 1))

    def new_stream(self, stream_id, first_pos, head):
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
        # acknowledged positions beyond the end were lost with it
        self.awaited_pos = min(self.awaited_pos, head)
        return [report]
