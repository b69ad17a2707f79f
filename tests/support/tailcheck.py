"""What masters made of a journal whose tail was rewritten (a failed-over
database, a journal restored from a copy), judged against the journal they
end on. Pure: no I/O.

A master's record (``load/loadnode.py``) lists every delivery in order with
its stream position. Going back to a position it delivered already is the
master taking up a rewritten tail: what it delivered from there on is
replaced by what follows. What it ends with (``final_history``) must be the
journal's entries, every position once, in order: then every master holds
the same messages in the same order, and nothing of the new history was
dropped. The messages it delivered and then saw replaced are the rewritten
tail. A message some master delivered that the journal no longer holds was
acknowledged and lost.
"""

import bisect

SHOWN = 5    # ranges of positions named in a problem, at most


def final_history(positions, delivered):
    """(kept, rewritten, rewinds): the (position, message) a master ends
    with, those it delivered and saw replaced, and how often it went back."""
    kept, kept_pos, rewritten, rewinds = [], [], [], 0
    for pos, message in zip(positions, delivered):
        if kept_pos and pos <= kept_pos[-1]:
            rewinds += 1
            cut = bisect.bisect_left(kept_pos, pos)
            rewritten += kept[cut:]
            del kept[cut:], kept_pos[cut:]
        kept.append((pos, tuple(message)))
        kept_pos.append(pos)
    return kept, rewritten, rewinds


def compare(kept, journal):
    """(dropped, extra): journal positions whose message the master never
    delivered (it holds none there, or the old history's), and positions it
    holds beyond the journal. ``journal``: {position: message}."""
    held = dict(kept)
    dropped = sorted(p for p, message in journal.items() if held.get(p) != message)
    extra = sorted(p for p in held if p not in journal)
    return dropped, extra


class MasterOutcome:
    """One master's figures: delivered, rewritten, dropped; the problems."""

    def __init__(self, name, record, journal, errors):
        self.name = name
        self.errors = errors
        self.problems = []
        if record is None:
            self.delivered = self.rewinds = 0
            self.kept, self.rewritten = [], []
            self.problems.append(f"{name} wrote no result")
            self.dropped, self.extra = sorted(journal), []
            return
        self.delivered = len(record['delivered'])
        self.kept, self.rewritten, self.rewinds = final_history(
            record['positions'], record['delivered'])
        self.dropped, self.extra = compare(self.kept, journal)
        for what, positions in (("never delivered the journal's message at", self.dropped),
                                ("holds positions beyond the journal's head:", self.extra)):
            if positions:
                self.problems.append(f"{name} {what} {len(positions)} positions "
                                     f"{_ranges(positions)}")
        if self.rewinds > 1:
            self.problems.append(f"{name} went back {self.rewinds} times")

    @property
    def rewrite_point(self):
        return min((p for p, _ in self.rewritten), default=None)


def judge(journal, records, produced, errors):
    """The outcome of a run. ``journal``: [(position, message)] it ends
    with; ``records``: {master: record or None}; ``produced``: {master:
    messages it produced}; ``errors``: {master: rewritten-tail errors it
    logged}. Returns (figures, problems)."""
    entries = dict(journal)
    masters = [MasterOutcome(name, r, entries, errors.get(name, 0))
               for name, r in records.items()]
    problems = [p for m in masters for p in m.problems]
    journaled = set(entries.values())
    if len(journaled) != len(entries):
        problems.append(f"the journal holds {len(entries) - len(journaled)} messages twice")
    everything = {(p, i) for p, n in produced.items() for i in range(n)}
    rewritten = {message for m in masters for _, message in m.rewritten}
    # delivered means journaled: a message some master delivered that the
    # journal no longer holds was acknowledged and lost (a master that kept
    # the old tail's message at a position counts, as one that replaced it)
    delivered = {tuple(message) for r in records.values() if r
                 for message in r['delivered']}
    points = {m.rewrite_point for m in masters if m.rewritten}
    figures = {
        'journal_head': max(entries, default=0),
        'rewrite_point': min(points) if points else None,
        'delivered': {m.name: m.delivered for m in masters},
        'rewritten_tail': {m.name: len(m.rewritten) for m in masters},
        'dropped': {m.name: len(m.dropped) for m in masters},
        'tail_errors': {m.name: m.errors for m in masters},
        'produced': len(everything),
        'lost': len(everything - journaled),
        'acknowledged_lost': len(delivered - journaled),
        'recovered': len(rewritten & journaled),
        'same_everywhere': (len({tuple(m.kept) for m in masters}) == 1
                            and not any(m.dropped or m.extra for m in masters)),
    }
    if len(points) > 1:
        problems.append(f"the masters went back to different positions: {sorted(points)}")
    return figures, problems


def _ranges(positions):
    """'3320-3894, 5270' for sorted positions (the first few ranges)."""
    spans = []
    for p in positions:
        if spans and p == spans[-1][1] + 1:
            spans[-1][1] = p
        else:
            spans.append([p, p])
    shown = ', '.join(f'{a}-{b}' if a != b else f'{a}' for a, b in spans[:SHOWN])
    return shown + (', ...' if len(spans) > SHOWN else '')
