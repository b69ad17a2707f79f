"""The leader's lease on a PostgreSQL journal: one row, a term and an
expiry on the database's clock (no clock of a router counts).

- ``acquire``: an expired lease (or one never taken) becomes this router's,
  with the term one higher;
- ``renew``: the leader pushes the expiry out, if the lease is still its
  term and not expired;
- ``release``: a leader stopping cleanly lets the next one in at once;
- ``FENCE``: the row while ``term`` leads. An append (pgwrites.py) reads
  it FOR SHARE in the one statement that writes, so a take-over waits for
  that statement and no longer, and a write after the take-over finds
  another term and writes nothing.

``acquire`` and ``renew`` lock the row first, then set the expiry: a
lease counts from when it is granted, not from when it was asked for (an
UPDATE alone computes its new row before it waits for the lock). Both
answer how long the lease has left on the database's clock.
"""

from collections import namedtuple

LEASE_TABLE = """
CREATE TABLE IF NOT EXISTS lease (
    id INTEGER PRIMARY KEY CHECK (id = 1), term BIGINT NOT NULL,
    holder TEXT NOT NULL, expires TIMESTAMPTZ NOT NULL);
INSERT INTO lease VALUES (1, 0, '', '-infinity') ON CONFLICT DO NOTHING
"""
FENCE = ("SELECT FROM lease WHERE id = 1 AND term = %(term)s "
         "AND expires > clock_timestamp()")
_UNTIL = "clock_timestamp() + %(seconds)s * interval '1 second'"
_LEFT = "extract(epoch FROM expires - clock_timestamp())::float8"

# a term granted, and the seconds its lease had left when the answer left
Grant = namedtuple('Grant', 'term remaining')


class Deposed(Exception):
    """This router's term is over: it may not write the journal."""


def acquire(db, holder, seconds):
    """The new term's ``Grant``, or None while another router's lease runs."""
    row = db.execute(
        "WITH free AS (SELECT id FROM lease WHERE id = 1 "
        "              AND expires <= clock_timestamp() FOR NO KEY UPDATE) "
        f"UPDATE lease SET term = term + 1, holder = %(holder)s, expires = {_UNTIL} "
        f"FROM free WHERE lease.id = free.id RETURNING term, {_LEFT}",
        {'holder': holder, 'seconds': seconds}).fetchone()
    return Grant(*row) if row else None


def renew(db, term, seconds):
    """The seconds the lease has left if it is still ``term``'s and now runs
    ``seconds`` more; None if it is not."""
    row = db.execute(
        f"WITH mine AS ({FENCE} FOR NO KEY UPDATE) "
        f"UPDATE lease SET expires = {_UNTIL} FROM mine WHERE lease.id = 1 "
        f"RETURNING {_LEFT}",
        {'term': term, 'seconds': seconds}).fetchone()
    return row[0] if row else None


def release(db, term):
    db.execute("UPDATE lease SET expires = '-infinity' WHERE id = 1 AND term = %(term)s",
               {'term': term})


# SQLSTATEs of a lock or statement timeout: the row was busy, nothing broke
BUSY = ('55P03', '57014')


def busy(error):
    """True if error says the lease's row was busy (the connection is fine)."""
    return getattr(error, 'sqlstate', None) in BUSY
