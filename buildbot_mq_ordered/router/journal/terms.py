"""A journal's terms: one leader's epoch each, named by a random id.

A term begins when a router takes the lead - on PostgreSQL at each lease
taken (the load after it), on SQLite at each opening of the journal - and
when a leader finds the journal is not where it left it (PostgreSQL: a
failover to a replica behind, which may keep the lease's row and so its
holder); every entry committed under it carries its id. The ``terms`` table holds
each term's id, the first position it could number (the head + 1 when it
began: it may hold no entry yet), the number it is ordered by (the lease's
term on PostgreSQL, one more than the last on SQLite) and when it began.

Why random ids, not the lease's counter: a journal restored from a backup,
or an asynchronous replica promoted, hands out the same counter values
again for a different history; an id made at each take-over never repeats
(2^-63), so a master tells the histories apart by it.
"""

import secrets

from buildbot_mq_ordered import wire

# the most recent terms, oldest first
RECENT = ("SELECT term_id, first_pos FROM terms ORDER BY number DESC, started DESC "
          "LIMIT ?")
# a term that ended before the oldest entry kept goes, unless it is among
# the MAX_TERMS most recent (both bounds: a NULL one deletes nothing)
PRUNE = (f"DELETE FROM terms WHERE number < (SELECT number FROM terms WHERE first_pos <= ? "
         f"ORDER BY number DESC LIMIT 1) AND number < (SELECT number FROM terms "
         f"ORDER BY number DESC LIMIT 1 OFFSET {wire.MAX_TERMS - 1})")


def new_term_id():
    """A term id: a random positive 63-bit integer (a BIGINT on both backends)."""
    return secrets.randbits(63) or 1


class TermHistory:
    """Part of ``BaseJournal``: the term this router numbers under
    (``term_id``, None until one began) and the journal's most recent terms
    (``terms``, read by every load). ``begin_term`` records a new one; the
    PostgreSQL backend does it in one fenced statement (pgwrites.py)."""

    term_id = None
    terms = ()     # [(term_id, first_pos), ...], oldest first
    term = None    # the lease's term this router holds (a shared journal's)

    def take_lease(self, term):
        """This router holds the lease of ``term`` (None: no more): a shared
        journal's writes are fenced by it, and the next load begins a new
        term in the journal - whatever the lease's number, which a promoted
        replica may hand out again."""
        self.term = term
        self.term_id = None

    def term_ends(self, known_head):
        """After a load under a lease: whether this router numbers on under
        a new term. Yes for a lease newly taken; and for a journal that is
        not where this router left it - its head below ``known_head``
        (what it had committed) or its term gone - which a database that
        failed over to a replica behind does without a take-over: the
        lease's row came over with the replica, and its holder may renew it."""
        return self.term is not None and (
            self.term_id is None or self.last_pos < known_head
            or self.term_id not in {term_id for term_id, _ in self.terms})

    def read_terms(self, db):
        rows = self._x(db, RECENT, (wire.MAX_TERMS,)).fetchall()
        self.terms = [(term_id, first_pos) for term_id, first_pos in reversed(rows)]

    def begin_term(self):
        """Record a new term from the head on, and number under it from now."""
        term_id = new_term_id()
        db = self._db
        with self._transaction(db):
            self._fence(db)
            first = int(self._meta('last_pos', db) or 0) + 1
            number = self._x(db, "SELECT max(number) FROM terms").fetchone()[0]
            self._x(db, "INSERT INTO terms (term_id, first_pos, number, started) "
                        "VALUES (?,?,?,?)", (term_id, first, (number or 0) + 1, self._clock()))
        self.began(term_id, first)

    def began(self, term_id, first_pos):
        self.term_id = term_id
        self.terms = (list(self.terms) + [(term_id, first_pos)])[-wire.MAX_TERMS:]

    def check_term(self, batches):
        """Raise unless every batch was numbered under the journal's term:
        an entry carries the term that commits it."""
        for entries, _, _ in batches:
            if entries[0][4] != self.term_id or self.term_id is None:
                raise RuntimeError(f"a batch numbered under term id {entries[0][4]} while the "
                                   f"journal is in term id {self.term_id}: nothing written")
