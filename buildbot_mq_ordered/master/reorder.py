"""The reorder buffer: releases stream entries strictly in position order.

Pure: no reactor, no I/O. The follower feeds it what arrives (stream events,
replay answers) and asks it which positions are missing; deciding *when* to
ask the sequencer for a replay, and logging a skip, is the caller's job.

An entry is any sequence whose first element is its stream position (int).
"""


class ReorderBuffer:
    """The entries that arrived ahead of a missing position (at most
    ``capacity``), the next position to deliver, and the highest one known
    to exist. Owned by the follower's ``Placement``; the ``StreamFollower``
    offers entries and asks which positions are missing."""

    def __init__(self, capacity=10000, next_pos=None):
        if capacity < 1:
            raise ValueError("capacity must be at least 1")
        self.capacity = capacity
        # None until the caller knows where the stream starts for us
        self.next_pos = next_pos
        self._held = {}
        # highest position ever offered, held or not: an entry dropped for
        # lack of room still tells us that everything below it exists
        self.highest_seen = 0 if next_pos is None else next_pos - 1

    def __len__(self):
        return len(self._held)

    @property
    def started(self):
        return self.next_pos is not None

    def start(self, next_pos):
        """Set the first position to deliver; returns entries now deliverable."""
        self.next_pos = next_pos
        for pos in [p for p in self._held if p < next_pos]:
            del self._held[pos]
        self.highest_seen = max(self.highest_seen, next_pos - 1)
        return self._drain([])

    def offer(self, entries):
        """Take entries in any order; return those deliverable, in order.

        Duplicates and positions already delivered are ignored. When the
        buffer is full, an early arrival is dropped (it will be replayed):
        memory stays bounded and nothing is lost.
        """
        out = []
        held = self._held
        for entry in entries:
            pos = entry[0]
            if pos > self.highest_seen:
                self.highest_seen = pos
            nxt = self.next_pos
            if nxt is not None and pos <= nxt:
                if pos == nxt:
                    # the one we wait for is always taken, full buffer or not
                    out.append(entry)
                    nxt += 1
                    while nxt in held:
                        out.append(held.pop(nxt))
                        nxt += 1
                    self.next_pos = nxt
                continue
            if pos in held or len(held) >= self.capacity:
                continue
            held[pos] = entry
        return out

    def missing(self):
        """The first hole as (first, last) positions, or None.

        Positions known to exist (something above them was seen) but neither
        delivered nor held.
        """
        if self.next_pos is None or self.highest_seen < self.next_pos:
            return None
        if self._held:
            last = min(self._held) - 1
        else:
            last = self.highest_seen
        return (self.next_pos, last)

    def saw(self, pos):
        """Record that positions up to pos exist (e.g. the sequencer's head)."""
        if pos > self.highest_seen:
            self.highest_seen = pos

    def skip_to(self, pos):
        """Give up on everything before pos; returns entries now deliverable."""
        if self.next_pos is not None and pos <= self.next_pos:
            return []
        return self.start(pos)

    def take_held(self):
        """The entries held (and no longer), in position order."""
        held, self._held = self._held, {}
        return [held[p] for p in sorted(held)]

    def forget_above(self, pos):
        """Drop held entries and knowledge above pos (they cannot exist)."""
        for p in [p for p in self._held if p > pos]:
            del self._held[p]
        self.highest_seen = min(self.highest_seen, pos)

    def _drain(self, out):
        held = self._held
        nxt = self.next_pos
        while nxt in held:
            out.append(held.pop(nxt))
            nxt += 1
        self.next_pos = nxt
        return out
