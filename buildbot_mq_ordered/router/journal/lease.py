"""The leader's lease on a PostgreSQL journal: one row, a term and an
expiry on the database's clock (no clock of a router counts).

- ``acquire``: an expired lease (or one never taken) becomes this router's,
  with the term one higher;
- ``renew``: the leader pushes the expiry out, if the lease is still its
  term and not expired;
- ``release``: a leader stopping cleanly lets the next one in at once;
- ``FENCE``: run first in every writing transaction; it takes the row with
  FOR SHARE, so a take-over waits for a commit under way, and a commit after
  the take-over finds another term and writes nothing.
"""

LEASE_TABLE = """
CREATE TABLE IF NOT EXISTS lease (
    id INTEGER PRIMARY KEY CHECK (id = 1), term BIGINT NOT NULL,
    holder TEXT NOT NULL, expires TIMESTAMPTZ NOT NULL);
INSERT INTO lease VALUES (1, 0, '', '-infinity') ON CONFLICT DO NOTHING
"""
FENCE = ("SELECT 1 FROM lease WHERE id = 1 AND term = %s AND expires > clock_timestamp() "
         "FOR SHARE")
_UNTIL = "clock_timestamp() + %s * interval '1 second'"


class Deposed(Exception):
    """This router's term is over: it may not write the journal."""


def acquire(db, holder, seconds):
    """The new term, or None while another router's lease runs."""
    row = db.execute(
        f"UPDATE lease SET term = term + 1, holder = %s, expires = {_UNTIL} "
        "WHERE id = 1 AND expires <= clock_timestamp() RETURNING term",
        (holder, seconds)).fetchone()
    return row[0] if row else None


def renew(db, term, seconds):
    """True if the lease is still ``term``'s and now runs ``seconds`` more."""
    return db.execute(
        f"UPDATE lease SET expires = {_UNTIL} "
        "WHERE id = 1 AND term = %s AND expires > clock_timestamp() RETURNING term",
        (seconds, term)).fetchone() is not None


def release(db, term):
    db.execute("UPDATE lease SET expires = '-infinity' WHERE id = 1 AND term = %s", (term,))
