"""Whether this router leads, from what the lease said and when. Pure: no
reactor, no database (leasekeeper.py asks PostgreSQL and drives this).

A leader counts its lease from the moment it *asked* for it (the database
set the expiry later than that), minus a margin: it stops leading before
any other router can take the lease over, even when its renewals hang.
"""

# seconds: the lease's length in the database, how often it is renewed (and
# a candidate tries to take it), how early a leader stops before it runs out
LEASE_SECONDS = 3.0
RENEW_EVERY = 1.0
MARGIN = 0.5


class Lease:
    """Owns the term this router leads (or None) and until when its lease
    counts; ``LeaseKeeper`` tells it what the database answered and asks
    whether it ran out."""

    def __init__(self, seconds=LEASE_SECONDS, margin=MARGIN):
        self.seconds = seconds
        self.margin = margin
        self.term = None          # the term this router leads, or None
        self.valid_until = None

    @property
    def leading(self):
        return self.term is not None

    def acquired(self, term, asked_at):
        self.term = term
        self.valid_until = asked_at + self.seconds - self.margin

    def renewed(self, term, asked_at):
        """A renewal asked at asked_at succeeded; False if it was for a term
        this router no longer leads (its answer came too late)."""
        if term != self.term:
            return False
        self.valid_until = asked_at + self.seconds - self.margin
        return True

    def expired(self, now):
        return self.leading and now >= self.valid_until

    def lost(self):
        """No longer leading; returns the term that ended (or None)."""
        term, self.term, self.valid_until = self.term, None, None
        return term
