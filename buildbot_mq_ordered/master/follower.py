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
``Placement`` decides what a new stream, a new term or a shorter stream
means, its ``Replays`` keep the one replay in flight (answers to an older
one, before a leave or after a failure, carry a stale token and are
ignored), its ``TermWait`` holds what came under a term it does not know
until info() told the journal's term history.
"""

from buildbot_mq_ordered import wire
from buildbot_mq_ordered.master.actions import Report
from buildbot_mq_ordered.master.placement import Placement
from buildbot_mq_ordered.master.placement import after_head
from buildbot_mq_ordered.master.replays import Replays
from buildbot_mq_ordered.master.termwait import TermWait
from buildbot_mq_ordered.util.backoff import Backoff


def _well_formed(entries):
    """The well-formed entries (the five elements this release knows of
    each), and a report of the others if any."""
    good = [e[:5] if len(e) > 5 else e for e in entries if wire.is_entry(e)]
    if len(good) == len(entries):
        return good, []
    return good, [Report('info', f"ordered-wamp: ignored {len(entries) - len(good)} "
                                 "malformed stream entries")]


def _of_placement(name):
    """A read-only attribute of the follower's ``Placement``."""
    return property(lambda self: getattr(self.placement, name))


class FollowerView:
    """What the shell reads of a ``StreamFollower``: where it stands (its
    ``Placement``'s), and the capacity its reconfig sets."""

    stream_id = _of_placement('stream_id')
    buffer = _of_placement('buffer')
    caught_up = _of_placement('caught_up')
    stream_changes = _of_placement('stream_changes')
    skipped = _of_placement('skipped')
    rewrites = _of_placement('rewrites')
    first_retained = _of_placement('first_retained')

    # True once the first join told us where to start delivering
    started = property(lambda self: self.buffer.started)
    next_pos = property(lambda self: self.buffer.next_pos)

    @property
    def capacity(self):
        return self.buffer.capacity

    @capacity.setter
    def capacity(self, n):
        self.buffer.capacity = self.terms.capacity = n


class StreamFollower(FollowerView):
    """Follows the sequencer's stream for one master: takes events, returns
    actions. The ``StreamReader`` (the MQ's, or the ``tail`` command's)
    feeds it and carries the actions out; the MQ also tells it of
    acknowledged submits, and reads where it stands (reports, stats)."""

    def __init__(self, capacity=10000, backoff=Backoff(1.0, 2.0, 60.0), start=after_head):
        self.placement = Placement(capacity, start)
        # backoff(n): seconds before retrying after the n-th failed replay in a row
        self.replays = Replays(backoff)
        self.terms = TermWait(capacity, backoff)
        self.joined = False
        self.replayed = 0         # entries that came in replay answers
        self.other_stream_events = 0

    # -- events -----------------------------------------------------------------

    def on_join(self, stream_id, first_pos, head, history=None):
        """Joined, and the sequencer's info() said where its stream stands
        (history: its terms, ``lineage.history_of``)."""
        self.joined = True
        self.replays.forget()
        return self._place(stream_id, first_pos, head, history, fresh=True)

    def on_info(self, stream_id, first_pos, head, history=None, token=None):
        """A later info() while joined: a heartbeat (token None), whose head
        tells of positions whose events never came, or the answer to an
        AskInfo."""
        if not self.joined:
            return []
        fresh = self.terms.answered(token)
        if token is not None and not fresh:
            return []   # asked before a leave, or failed meanwhile
        return self._place(stream_id, first_pos, head, history, fresh)

    def on_info_failed(self, token, reason):
        return self.terms.failed(token, reason)

    def on_leave(self):
        self.joined = False
        self.replays.forget()
        self.terms.forget()
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
        valid = self._take(entries)
        return out + self.placement.offer(valid or []) + self._fill()

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
            # its terms are not known yet: info() tells them
            self.terms.forget()
            self.terms.hold([])
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

    def _place(self, stream_id, first_pos, head, history, fresh):
        followed, term = self.stream_id, self.placement.lineage.current
        out = self.placement.place(stream_id, first_pos, head, history)
        if self.stream_id != followed:
            self.replays.forget()   # an answer would be about the old stream
            self.terms.forget()
        elif self.placement.lineage.current != term:
            self.replays.forget()   # an answer may be of the history before
        terms = self.terms
        if terms.waiting and (fresh or not self.placement.lineage.unknown(terms.held)):
            out += terms.release(self.placement, head)
        return out + self._fill()

    def _take(self, entries, answered=False):
        """Entries of the journal's history as known here, or None: they all
        wait for info() (one came under a term not known here, or the
        follower already waits). Stale ones (of a history the journal no
        longer holds as known here) are left out of an event; in a replay
        answer (``answered``: the journal's now, or late) they may tell of
        a history not known here: they wait for info() too."""
        valid, unknown = self.placement.sort(entries)
        doubt = unknown or (answered and len(valid) < len(entries))
        if doubt or self.terms.waiting:
            self.terms.hold(entries)
            return None
        return valid

    def _replayed(self, asked, first_pos, head, entries):
        """The answer to the replay of positions asked (first, last), on the stream followed."""
        entries, out = _well_formed(entries)
        self.replayed += len(entries)
        self.placement.first_retained = first_pos
        valid = self._take(entries, answered=True)
        if valid is None:
            return out
        return out + self.replays.filled(self.placement, asked, first_pos, head, valid)

    def _fill(self):
        """Ask for the first hole, unless a replay is already under way (or
        the follower waits for the journal's terms: ask for them)."""
        if not self.joined:
            return []
        if self.terms.waiting:
            return self.terms.ask()
        if self.replays.in_flight:
            return []
        gap = self.buffer.missing()
        if gap is None:
            return []
        return [self.replays.ask(*gap)]
