"""The stream follower: what a master does with what the sequencer tells it.

Pure, in the style of the reorder buffer (and of h11): no reactor, no
session, no logging. Its ``StreamReader`` feeds it events - joined (with the
sequencer's stream id, first retained position and head), left, a stream
event, a replay answered or failed, a retry timer fired - and the MQ a submit
acknowledged; the reader carries out the actions it returns: deliver these
entries, ask for a replay of this range, report this line, try the replay
again after this delay.

It decides when a hole is asked for and when a hole is lost for good
(retention exceeded, or the sequencer has nothing for it); its
``Placement`` decides what a new stream or a shorter one means, its
``Replays`` keep the one replay in flight (answers to an older one, before a
leave or after a failure, carry a stale token and are ignored).
"""

from buildbot_mq_ordered import wire
from buildbot_mq_ordered.master.actions import Report
from buildbot_mq_ordered.master.actions import delivering
from buildbot_mq_ordered.master.placement import Placement
from buildbot_mq_ordered.master.placement import after_head
from buildbot_mq_ordered.master.replays import Replays
from buildbot_mq_ordered.util.backoff import Backoff


def _well_formed(entries):
    """The well-formed entries, and a report of the others if any."""
    good = [e for e in entries if wire.is_entry(e)]
    if len(good) == len(entries):
        return good, []
    return good, [Report('info', f"ordered-wamp: ignored {len(entries) - len(good)} "
                                 "malformed stream entries")]


def _of_placement(name):
    """A read-only attribute of the follower's ``Placement``."""
    return property(lambda self: getattr(self.placement, name))


class StreamFollower:
    """Follows the sequencer's stream for one master: takes events, returns
    actions. The ``StreamReader`` (the MQ's, or the ``tail`` command's)
    feeds it and carries the actions out; the MQ also tells it of
    acknowledged submits, and reads where it stands (reports, stats)."""

    def __init__(self, capacity=10000, backoff=Backoff(1.0, 2.0, 60.0), start=after_head):
        self.placement = Placement(capacity, start)
        # backoff(n): seconds before retrying after the n-th failed replay in a row
        self.replays = Replays(backoff)
        self.joined = False
        self.replayed = 0         # entries that came in replay answers
        self.other_stream_events = 0

    # -- what the shell reads -------------------------------------------------

    stream_id = _of_placement('stream_id')
    buffer = _of_placement('buffer')
    caught_up = _of_placement('caught_up')
    stream_changes = _of_placement('stream_changes')
    skipped = _of_placement('skipped')

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

    # -- events -----------------------------------------------------------------

    def on_join(self, stream_id, first_pos, head):
        """Joined, and the sequencer's info() said where its stream stands."""
        self.joined = True
        self.replays.forget()
        return self._place(stream_id, first_pos, head)

    def on_info(self, stream_id, first_pos, head):
        """A later info() while joined (a heartbeat): the head tells of
        positions whose events never came."""
        if not self.joined:
            return []
        return self._place(stream_id, first_pos, head)

    def on_leave(self):
        self.joined = False
        self.replays.forget()
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
        entries, out = _well_formed(entries)
        return out + delivering(self.buffer.offer(entries)) + self._fill()

    def on_replay(self, token, answer):
        """The sequencer answered replay ``token``: [stream_id, first_pos, head, entries]."""
        asked = self.replays.answered(token)
        if asked is None:
            return []
        if not wire.is_replay_answer(answer):
            return self.replays.failed("malformed replay answer")
        self.replays.succeeded()
        stream_id, first_pos, head, entries = answer
        if stream_id != self.stream_id:
            return self.placement.new_stream(stream_id, first_pos, head) + self._fill()
        return self._replayed(asked, first_pos, head, entries) + self._fill()

    def on_replay_failed(self, token, reason):
        if self.replays.answered(token) is None:
            return []   # an older replay, or the session it ran on left
        return self.replays.failed(reason)

    def retry(self):
        """The delay of a RetryLater passed."""
        return self._fill()

    def on_acked(self, last_pos):
        """This master's submit was acknowledged up to stream position last_pos."""
        self.placement.acked(last_pos)
        return []

    # -- decisions --------------------------------------------------------------

    def _place(self, stream_id, first_pos, head):
        followed = self.stream_id
        out = self.placement.place(stream_id, first_pos, head)
        if self.stream_id != followed:
            self.replays.forget()   # an answer would be about the old stream
        return out + self._fill()

    def _replayed(self, asked, first_pos, head, entries):
        """The answer to the replay of positions asked (first, last), on the stream followed."""
        first, last = asked
        buf = self.buffer
        entries, out = _well_formed(entries)
        self.replayed += len(entries)
        before = buf.next_pos
        if head < buf.highest_seen:
            out.append(Report('info', (
                f"ordered-wamp: ignored stream positions above {head}, "
                "the sequencer's head: not published by the sequencer")))
            buf.forget_above(head)
        if first_pos > first:
            end = min(first_pos - 1, last)
            out += self.placement.skip(first, end, "are no longer in the sequencer's history "
                              "(retention exceeded)")
        out += delivering(buf.offer(entries))
        if buf.next_pos == before and buf.missing() == (first, last):
            # the sequencer has nothing for a hole it should have: do not stall
            out += self.placement.skip(first, last, "were not returned by the sequencer")
        return out

    def _fill(self):
        """Ask for the first hole, unless a replay is already under way."""
        if not self.joined or self.replays.in_flight:
            return []
        gap = self.buffer.missing()
        if gap is None:
            return []
        return [self.replays.ask(*gap)]
