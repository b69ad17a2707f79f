"""Whether this router leads, from what the lease said and when. Pure: no
reactor, no database (leasekeeper.py asks PostgreSQL and drives this).

The database counts a lease from when it granted it (after any wait for
the lease's row) and answers how long it has left. The router cannot tell
when, between its question and the answer, that was: it counts from when
it asked, and no further than what the database said was left, less a
margin. So it stops leading before any other router can take the lease
over, even when its renewals hang. A grant whose wait used up most of
that is renewed at once (``renew_due``) rather than lost unused.
"""

# seconds: the lease's length in the database, how often it is renewed (and
# a candidate tries to take it), how early a leader stops before it runs out
LEASE_SECONDS = 3.0
RENEW_EVERY = 1.0
MARGIN = 0.5


class Lease:
    """Owns the term this router leads (or None) and until when its lease
    counts; ``LeaseKeeper`` tells it what the database answered and asks
    whether it ran out or needs renewing before the next regular try."""

    def __init__(self, seconds=LEASE_SECONDS, margin=MARGIN, renew_every=RENEW_EVERY):
        self.seconds = seconds
        self.margin = margin
        self.renew_every = renew_every
        self.term = None          # the term this router leads, or None
        self.valid_until = None

    @property
    def leading(self):
        return self.term is not None

    def _until(self, asked_at, remaining):
        # asked_at is before the grant, and the database's expiry is the
        # grant (or later) plus remaining: this ends before it
        left = self.seconds if remaining is None else min(self.seconds, remaining)
        return asked_at + left - self.margin

    def acquired(self, term, asked_at, remaining=None):
        """The database granted ``term`` to a request asked at asked_at, with
        ``remaining`` seconds left when it answered."""
        self.term = term
        self.valid_until = self._until(asked_at, remaining)

    def renewed(self, term, asked_at, remaining=None):
        """A renewal asked at asked_at succeeded; False if it was for a term
        this router no longer leads (its answer came too late)."""
        if term != self.term:
            return False
        self.valid_until = max(self.valid_until, self._until(asked_at, remaining))
        return True

    def expired(self, now):
        return self.leading and now >= self.valid_until

    def renew_due(self, now):
        """Leading, and the lease would run out before the next regular
        renewal is asked: renew now."""
        return self.leading and self.valid_until - now < self.renew_every

    def lost(self):
        """No longer leading; returns the term that ended (or None)."""
        term, self.term, self.valid_until = self.term, None, None
        return term
