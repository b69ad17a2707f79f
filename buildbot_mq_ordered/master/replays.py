"""The follower's replays: one in flight, and the run of failed ones.
Pure: owned by the ``StreamFollower``."""

from buildbot_mq_ordered import wire
from buildbot_mq_ordered.master.actions import Replay
from buildbot_mq_ordered.master.actions import Report
from buildbot_mq_ordered.master.actions import RetryLater


class Replays:
    """The replay in flight (at most one) and how many failed in a row.

    Each replay carries a token: an answer to an older one (asked before a
    leave, or failed meanwhile) is stale and ``answered`` says so. A failed
    replay is tried again after ``backoff(failures in a row)`` seconds. The
    ``StreamFollower`` asks here for the hole it wants filled and hands
    over the tokens of answers and failures."""

    def __init__(self, backoff):
        self.backoff = backoff
        self._asked = None        # (token, first, last) of the replay in flight
        self._tokens = 0
        self._failures = 0

    @property
    def in_flight(self):
        return self._asked is not None

    def ask(self, first, last):
        """The Replay action for positions first..last (at most MAX_REPLAY)."""
        self._tokens += 1
        self._asked = (self._tokens, first, last)
        return Replay(self._tokens, first, min(last - first + 1, wire.MAX_REPLAY))

    def answered(self, token):
        """(first, last) that replay ``token`` asked for if it is the one in
        flight, which then no longer is; None if it is stale."""
        if self._asked is None or token != self._asked[0]:
            return None
        _, first, last = self._asked
        self._asked = None
        return first, last

    def forget(self):
        """Left, joined again or on a new stream: an answer to the replay
        in flight would mean nothing now."""
        self._asked = None

    def succeeded(self):
        self._failures = 0

    def failed(self, reason):
        # busy or failing sequencer: try again later, not at the next stream
        # event (there may be none)
        self._failures += 1
        delay = self.backoff(self._failures)
        return [Report('info', f"ordered-wamp: replay failed ({wire.shown(reason)}); "
                               f"retrying in {delay:.1f}s"),
                RetryLater(delay)]

    def filled(self, placement, asked, first_pos, head, entries):
        """What the answer to the replay of positions asked (first, last)
        means for the ``Placement``: its entries (all of the journal's
        history as known), retention (first_pos: the oldest position kept)
        and the head. Returns the actions."""
        first, last = asked
        buf = placement.buffer
        out = []
        before = buf.next_pos
        if head < buf.highest_seen:
            out.append(Report('info', (
                f"ordered-wamp: ignored stream positions above {head}, "
                "the sequencer's head: not published by the sequencer")))
            buf.forget_above(head)
        # what was asked and is still missing (events may have come meanwhile)
        start, end = max(first, buf.next_pos), min(first_pos - 1, last)
        if start <= end:
            out += placement.skip(start, end, "are no longer in the sequencer's history "
                                              "(retention exceeded)")
        out += placement.offer(entries)
        if buf.next_pos == before and buf.missing() == (first, last):
            # the sequencer has nothing for a hole it should have: do not stall
            out += placement.skip(first, last, "were not returned by the sequencer")
        return out
