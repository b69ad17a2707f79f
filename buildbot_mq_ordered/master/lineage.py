"""Which leader's term numbered each position: as the journal tells, and as
this master went through the stream. Pure: owned by the follower's ``Placement``.

A term is one leader's epoch, named by a random id made when it began
(docs/design.rst). The journal's history is ``[(term_id, first_pos), ...]``
oldest first (info's ``terms``); a position belongs to the latest term that
began at or below it, even one that holds no entry yet. Where the journal's
term for a position differs from the term this master delivered it under,
the journal's history was rewritten there (a replica behind promoted, a
journal restored from an older copy): the tail from that point on is
delivered again, from the new history.
"""

from buildbot_mq_ordered.master.actions import Report

# runs of positions a master keeps the terms of (a run: one term, delivered
# or passed over); the journal tells its last 32 terms (wire.MAX_TERMS)
HISTORY = 64

# what an entry is, by its term
VALID = 'valid'        # of the journal's history as known here (or older than it)
STALE = 'stale'        # of a history the journal no longer holds: never delivered
UNKNOWN = 'unknown'    # of a term not known here: wait for the journal's history


def term_at(history, pos):
    """The term of pos in a history [(term, first_pos, ...)]: the latest
    one (in the list's order) that began at or below pos; None if pos is
    older than the history (nothing to compare)."""
    for run in reversed(history):
        if run[1] <= pos:
            return run[0]
    return None


def history_of(info):
    """The journal's term history from an info() answer: a list of
    (term_id, first_pos), the current term last; None if it tells none (or
    not in the agreed shape)."""
    terms = info.get('terms')
    if not isinstance(terms, list) or not terms or not all(
            isinstance(t, (list, tuple)) and len(t) == 2
            and type(t[0]) is int and type(t[1]) is int for t in terms):
        return None
    history = [(t[0], t[1]) for t in terms[-HISTORY:]]
    if info.get('term_id', history[-1][0]) != history[-1][0]:
        return None
    return history


def term_of(entry):
    """The term id an entry was committed under (None before terms)."""
    return entry[4] if len(entry) > 4 else None


class Lineage:
    """The journal's term history as its last info() told (``journal``),
    and the runs of positions this master went through: ``(term, first_pos,
    passed)``, passed meaning skipped or started after, not delivered.
    ``judge`` says what an arriving entry is; ``divergence`` where the
    journal's history left what this master went through."""

    def __init__(self):
        self.journal = None      # [(term_id, first_pos)]; None: no terms told yet
        self.runs = []           # [(term or None, first_pos, passed)]
        self._stale = []         # term ids found to be of no history the journal keeps

    @property
    def current(self):
        return self.journal[-1][0] if self.journal else None

    def knows(self, term):
        return self.journal is not None and any(t == term for t, _ in self.journal)

    def judge(self, entry):
        if self.journal is None:
            return VALID
        term = term_of(entry)
        theirs = term_at(self.journal, entry[0])
        if theirs is None or theirs == term:
            return VALID
        if self.knows(term) or term in self._stale:
            return STALE
        return UNKNOWN

    def learn(self, history):
        """The journal's history, from an info() answer (None: it told none)."""
        if history is not None:
            self.journal = history
            self._stale = [t for t in self._stale if not self.knows(t)]

    def unknown(self, entries):
        return [e for e in entries if self.judge(e) == UNKNOWN]

    def stale(self, terms):
        """These term ids are of no history the journal keeps (a fresh
        info() does not know them): their entries are dropped from now on."""
        self._stale = (self._stale + [t for t in terms if t not in self._stale])[-HISTORY:]

    def delivered(self, entries):
        for e in entries:
            self._extend(term_of(e), e[0], False)

    def passed(self, first, last):
        """Positions first..last go by undelivered (the start, a skip): they
        count as the journal's as this master knows it now."""
        points = sorted({first} | {f for _, f in self.journal or () if first < f <= last})
        for p in points:
            self._extend(term_at(self.journal or (), p), p, True)

    def rewind(self, pos):
        """Positions from pos on are to go through again."""
        self.runs = [r for r in self.runs if r[1] < pos]

    def reset(self):
        self.journal, self.runs, self._stale = None, [], []

    def divergence(self, upto):
        """The first position <= upto whose term here differs from the
        journal's, or None. Only where the terms change can they start to
        differ; positions older than either history count as agreeing."""
        if self.journal is None:
            return None
        points = sorted({r[1] for r in self.runs} | {f for _, f in self.journal})
        for p in points:
            if p > upto:
                break
            mine, theirs = term_at(self.runs, p), term_at(self.journal, p)
            if mine is not None and theirs is not None and mine != theirs:
                return p
        return None

    def delivered_between(self, first, last):
        """How many positions first..last this master delivered (not passed)."""
        n = 0
        for i, (_, start, passed) in enumerate(self.runs):
            end = self.runs[i + 1][1] - 1 if i + 1 < len(self.runs) else last
            if not passed:
                n += max(0, min(end, last) - max(start, first) + 1)
        return n

    def _extend(self, term, pos, passed):
        runs = self.runs
        if runs and runs[-1][0] == term and runs[-1][2] == passed:
            return
        runs.append((term, pos, passed))
        if len(runs) > HISTORY:
            del runs[0]


def rewritten(stream, first, delivered_to, delivered, holds, head, term):
    """The one report of a rewritten tail: an error if this master had
    delivered some of it (it disagrees with the stream now)."""
    return Report('error' if delivered else 'info', (
        f"ordered-wamp: stream {stream} was rewritten from position {first} (a new term, "
        f"id {term}, began after the journal lost its tail: its database failed over to a "
        "replica that was behind, or it was restored from an older copy): this master had "
        f"delivered {delivered} messages at positions {first}..{delivered_to} that are not "
        f"the stream's any more; the new history holds {holds} messages from position "
        f"{first} (its head is {head}): delivering them"))
