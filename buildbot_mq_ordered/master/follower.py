"""The stream follower: what a master does with what the sequencer tells it.

Pure, in the style of the reorder buffer (and of h11): no reactor, no
session, no logging. The MQ feeds it events - joined (with the sequencer's
stream id, first retained position and head), left, a stream event, a replay
answered or failed, a retry timer fired, a submit acknowledged - and carries
out the actions it returns: deliver these entries, ask for a replay of this
range, report this line, try the replay again after this delay.

It decides when a hole is asked for, when a hole is lost for good (retention
exceeded, or the sequencer has nothing for it), and what a new stream or a
shorter one means. One replay is in flight at a time; answers to an older
one (before a leave, or after a failure) carry a stale token and are ignored.
"""

from buildbot_mq_ordered import wire
from buildbot_mq_ordered.master.actions import Deliver
from buildbot_mq_ordered.master.actions import Replay
from buildbot_mq_ordered.master.actions import Report
from buildbot_mq_ordered.master.actions import RetryLater
from buildbot_mq_ordered.master.reorder import ReorderBuffer


def _backoff_1s(failures):
    return min(2.0 ** (failures - 1), 60.0)


def after_head(first_pos, head):
    """A master delivers what is produced after it joined."""
    return head + 1


class StreamFollower:

    def __init__(self, capacity=10000, backoff=_backoff_1s, start=after_head):
        # backoff(n): seconds before retrying after the n-th failed replay in a row
        self.backoff = backoff
        # start(first_pos, head): the first position to deliver, at the first join
        self.start = start
        self.buffer = ReorderBuffer(capacity)
        # the journal whose positions this master follows (None: never joined)
        self.stream_id = None
        self.joined = False
        # the highest position this master's own submits were acknowledged
        # at: until it is delivered here, what was produced here is in flight
        self.awaited_pos = 0
        self.skipped = 0
        self.replayed = 0         # entries that came in replay answers
        self.stream_changes = 0
        self.other_stream_events = 0
        self._replay = None       # (token, first, last) of the replay in flight
        self._tokens = 0
        self._replay_failures = 0

    # -- what the shell reads -------------------------------------------------

    @property
    def started(self):
        """True once the first join told us where to start delivering."""
        return self.buffer.started

    @property
    def next_pos(self):
        return self.buffer.next_pos

    @property
    def capacity(self):
        return self.buffer.capacity

    @capacity.setter
    def capacity(self, n):
        self.buffer.capacity = n

    @property
    def caught_up(self):
        """Everything this master's submits were acknowledged at is delivered."""
        return not self.started or self.buffer.next_pos > self.awaited_pos

    # -- events -----------------------------------------------------------------

    def on_join(self, stream_id, first_pos, head):
        """Joined, and the sequencer's info() said where its stream stands."""
        self.joined = True
        self._replay = None
        return self._place(stream_id, first_pos, head)

    def on_info(self, stream_id, first_pos, head):
        """A later info() while joined (a heartbeat): the head tells of
        positions whose events never came."""
        if not self.joined:
            return []
        return self._place(stream_id, first_pos, head)

    def on_leave(self):
        self.joined = False
        self._replay = None
        return []

    def on_event(self, stream_id, entries):
        """A stream event published by the sequencer (checked by the shell)."""
        if stream_id != self.stream_id:
            # late events of an old stream, or of a new one before a join
            # switched to it (replay brings those back then)
            self.other_stream_events += 1
            return []
        if not isinstance(entries, list):
            return [Report('info', "ordered-wamp: ignored a malformed stream event")]
        entries, out = self._well_formed(entries)
        return out + self._deliver(self.buffer.offer(entries)) + self._fill()

    def on_replay(self, token, answer):
        """The sequencer answered replay ``token``: [stream_id, first_pos, head, entries]."""
        if self._replay is None or token != self._replay[0]:
            return []
        _, first, last = self._replay
        self._replay = None
        if not (isinstance(answer, (list, tuple)) and len(answer) == 4 and
                isinstance(answer[3], list) and
                all(type(x) is int for x in answer[1:3])):
            return self._replay_failed("malformed replay answer")
        self._replay_failures = 0
        stream_id, first_pos, head, entries = answer
        if stream_id != self.stream_id:
            return self._new_stream(stream_id, first_pos, head) + self._fill()
        buf = self.buffer
        entries, out = self._well_formed(entries)
        self.replayed += len(entries)
        before = buf.next_pos
        if head < buf.highest_seen:
            out.append(Report('info', (
                f"ordered-wamp: ignored stream positions above {head}, "
                "the sequencer's head: not published by the sequencer")))
            buf.forget_above(head)
        if first_pos > first:
            end = min(first_pos - 1, last)
            out += self._skip(first, end, "are no longer in the sequencer's history "
                              "(retention exceeded)")
        out += self._deliver(buf.offer(entries))
        if buf.next_pos == before and buf.missing() == (first, last):
            # the sequencer has nothing for a hole it should have: do not stall
            out += self._skip(first, last, "were not returned by the sequencer")
        return out + self._fill()

    def on_replay_failed(self, token, reason):
        if self._replay is None or token != self._replay[0]:
            return []   # an older replay, or the session it ran on left
        self._replay = None
        return self._replay_failed(reason)

    def retry(self):
        """The delay of a RetryLater passed."""
        return self._fill()

    def on_acked(self, last_pos):
        """This master's submit was acknowledged up to stream position last_pos."""
        if last_pos:
            self.awaited_pos = max(self.awaited_pos, last_pos)
        return []

    # -- decisions --------------------------------------------------------------

    def _place(self, stream_id, first_pos, head):
        buf = self.buffer
        out = []
        if not buf.started:
            self.stream_id = stream_id
            out += self._deliver(buf.start(self.start(first_pos, head)))
            buf.saw(head)
        elif stream_id != self.stream_id:
            out += self._new_stream(stream_id, first_pos, head)
        elif head < buf.next_pos - 1:
            out.append(Report('error', (
                f"ordered-wamp: stream {stream_id} ends at position {head}, before "
                f"position {buf.next_pos - 1} this master already delivered; "
                "continuing after its end")))
            self.buffer = ReorderBuffer(buf.capacity, next_pos=head + 1)
            # acknowledged positions beyond the end were lost with it
            self.awaited_pos = min(self.awaited_pos, head)
        else:
            buf.saw(head)
        return out + self._fill()

    def _fill(self):
        """Ask for the first hole, unless a replay is already under way."""
        if not self.joined or self._replay is not None:
            return []
        gap = self.buffer.missing()
        if gap is None:
            return []
        first, last = gap
        self._tokens += 1
        self._replay = (self._tokens, first, last)
        return [Replay(self._tokens, first, min(last - first + 1, wire.MAX_REPLAY))]

    def _replay_failed(self, reason):
        # busy or failing sequencer: try again later, not at the next stream
        # event (there may be none)
        self._replay_failures += 1
        delay = self.backoff(self._replay_failures)
        return [Report('info', f"ordered-wamp: replay failed ({reason}); "
                               f"retrying in {delay:.1f}s"),
                RetryLater(delay)]

    def _skip(self, first, last, why):
        lost = last - first + 1
        self.skipped += lost
        return [Report('error', f"ordered-wamp: stream positions {first}..{last} "
                                f"({lost} messages) {why}; skipped")] + \
            self._deliver(self.buffer.skip_to(last + 1))

    def _new_stream(self, stream_id, first_pos, head):
        """The sequencer's journal is not the one followed so far (lost,
        replaced): start over on the new stream from its first retained
        position; the MQ resubmits its outbox when it flushes."""
        buf = self.buffer
        done = buf.next_pos - 1
        missed = max(buf.highest_seen, done) - done
        report = Report('error', (
            f"ordered-wamp: the sequencer now serves stream {stream_id}, not stream "
            f"{self.stream_id} that this master followed up to position {done} "
            f"(its journal was lost or replaced): {missed} known positions of the "
            "old stream after that can no longer be delivered; delivering the new "
            f"stream from its position {first_pos}"))
        self.stream_changes += 1
        self.stream_id = stream_id
        self.buffer = ReorderBuffer(buf.capacity, next_pos=first_pos)
        self.buffer.saw(head)
        # positions acknowledged on the old stream mean nothing on this one
        self.awaited_pos = 0
        self._replay = None
        return [report]

    @staticmethod
    def _well_formed(entries):
        """The well-formed entries, and a report of the others if any."""
        good = [e for e in entries if wire.is_entry(e)]
        if len(good) == len(entries):
            return good, []
        return good, [Report('info', f"ordered-wamp: ignored {len(entries) - len(good)} "
                                     "malformed stream entries")]

    @staticmethod
    def _deliver(entries):
        return [Deliver(entries)] if entries else []
