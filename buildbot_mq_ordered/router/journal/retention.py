"""What a journal keeps: the newest ``retention_messages`` entries and none
older than ``retention_seconds``. Per-key counters last as long as the
history: a key unused since the oldest entry kept is dropped (it would start
again at 1), so the table stays bounded however many keys there are
(Buildbot's embed ids: about 57 new keys per build). Producer marks last
``retention_seconds`` after their last use (a row per master start). A
term lasts while it holds an entry kept, or is among the most recent
(terms.py).
"""

from buildbot_mq_ordered.router.journal import terms

# prune once per this many appends: retention is a bound, not an exact size
PRUNE_EVERY = 200


class Retention:
    """A journal's retention: counts appends, says when a prune is due and
    prunes. Part of ``BaseJournal`` (it uses the journal's connection,
    transactions and fencing); the journal writer prunes when due, after
    publishing."""

    def __init__(self, retention_messages, retention_seconds):
        self.retention_messages = retention_messages
        self.retention_seconds = retention_seconds
        self._appends_since_prune = 0

    def _appended(self, batches):
        self._appends_since_prune += batches

    @property
    def prune_due(self):
        """True once every PRUNE_EVERY appends: the caller prunes then, after
        it published the batch (a failed prune must not hold a batch back)."""
        return self._appends_since_prune >= PRUNE_EVERY

    def take_prune_due(self):
        """``prune_due``, and no longer due: one prune per due, even failed."""
        due = self.prune_due
        if due:
            self._appends_since_prune = 0
        return due

    def prune(self):
        """Apply retention; returns the number of entries removed."""
        self._appends_since_prune = 0
        now = self._clock()
        db = self._db
        n = 0
        with self._transaction(db):
            self._fence(db)
            cutoff = self.last_pos - self.retention_messages + 1
            row = self._x(db, "SELECT pos FROM entries WHERE ts >= ? ORDER BY pos LIMIT 1",
                          (now - self.retention_seconds,)).fetchone()
            cutoff = max(cutoff, row[0] if row else self.last_pos + 1)
            if cutoff > self.first_pos:
                n = self._x(db, "DELETE FROM entries WHERE pos < ?", (cutoff,)).rowcount
            # a counter lives as long as the history: a key none of whose
            # messages is left, unused since the oldest one kept, goes
            # (entries are appended in time order: the first one kept is the
            # oldest, found by its position, not by scanning them all)
            row = self._x(db, "SELECT ts FROM entries WHERE pos >= ? ORDER BY pos LIMIT 1",
                          (max(cutoff, self.first_pos),)).fetchone()
            oldest = row[0] if row else None
            self._x(db, "DELETE FROM keyseq WHERE ts < ?",
                    (now - self.retention_seconds if oldest is None else oldest,))
            # marks by age only: few rows, and they keep resubmissions out
            self._x(db, "DELETE FROM producers WHERE ts < ?", (now - self.retention_seconds,))
            self._x(db, terms.PRUNE, (max(cutoff, self.first_pos),))
        self.first_pos = max(self.first_pos, cutoff)
        return n
