"""The follower's wait for the journal's term history. Pure: owned by the
``StreamFollower``."""

from buildbot_mq_ordered import wire
from buildbot_mq_ordered.master.actions import AskInfo
from buildbot_mq_ordered.master.actions import Report
from buildbot_mq_ordered.master.actions import RetryLater
from buildbot_mq_ordered.master.lineage import term_of


class TermWait:
    """Entries held while this master waits for the journal's term history
    (an entry came under a term it does not know), and the info() asked for
    it: one at a time, by token, as the ``Replays``.

    Until the answer, nothing is delivered and no position counts as
    delivered: a new term may have rewritten positions this master already
    delivered, and its entries there must not be dropped as duplicates. At
    most ``capacity`` entries are held; those beyond are replayed later."""

    def __init__(self, capacity, backoff):
        self.capacity = capacity
        self.backoff = backoff
        self.waiting = False
        self.held = []
        self.highest = 0          # the highest position held or not held for lack of room
        self._asked = None        # token of the info() in flight
        self._tokens = 0
        self._failures = 0

    def hold(self, entries):
        self.waiting = True
        room = max(0, self.capacity - len(self.held))
        self.held += entries[:room]
        self.highest = max([self.highest] + [e[0] for e in entries])

    def ask(self):
        """The AskInfo to send now, if none is in flight."""
        if self._asked is not None:
            return []
        self._tokens += 1
        self._asked = self._tokens
        return [AskInfo(self._tokens)]

    def answered(self, token):
        """True if info ``token`` is the one in flight, which then no longer is."""
        if not self._take(token):
            return False
        self._failures = 0
        return True

    def failed(self, token, reason):
        if not self._take(token):
            return []
        self._failures += 1
        delay = self.backoff(self._failures)
        return [Report('info', f"ordered-wamp: info failed ({wire.shown(reason)}); "
                               f"retrying in {delay:.1f}s"),
                RetryLater(delay)]

    def release(self, placement, head):
        """info() told the journal's terms (head: its head): what waited goes
        on to the ``Placement``; a term still not known, after a fresh
        info(), is of no history the journal keeps. Returns the actions."""
        held, highest = self.held, self.highest
        self.forget()
        valid, unknown = placement.sort(held)
        placement.lineage.stale({term_of(e) for e in unknown})
        placement.buffer.saw(min(highest, head))
        return placement.offer(valid)

    def forget(self):
        """Left, or on a new stream: what is held, and the answer to the
        info() in flight, would mean nothing now (a join's info() tells
        the history, and replays bring what was held)."""
        self.waiting, self.held, self.highest = False, [], 0
        self._asked = None

    def _take(self, token):
        if token is None or token != self._asked:
            return False
        self._asked = None
        return True
