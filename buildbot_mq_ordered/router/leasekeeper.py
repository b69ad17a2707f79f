"""Takes and keeps the lease of a PostgreSQL journal (journal/lease.py) for
the sequencer: every RENEW_EVERY seconds a candidate tries to take it and a
leader renews it, in a thread of its own on a connection of its own; the
decisions are ``Lease``'s (leadership.py).

``owner.lead(term)`` when this router takes the lead, ``owner.step_down(
term, reason)`` at once when it loses it: a renewal refused or failed (the
database is away) or not answered before the lease would run out. An
answer that the lease's row is busy (a lock or statement timeout: a commit
under way holds it) is no answer: a candidate tries again next time, a
leader keeps its lease until it runs out. Every call is bounded (the
journal's watchdog aborts a hung one), so a hung link never keeps the
keeper from trying again.

Its decisions use a monotonic clock (``clock``'s in tests): a wall clock
stepped back must not lengthen a lease.
"""

import time
import uuid

from twisted.internet import defer
from twisted.internet import task

from buildbot_mq_ordered.router.journal import lease as lease_sql
from buildbot_mq_ordered.router.leadership import RENEW_EVERY
from buildbot_mq_ordered.router.leadership import Lease
from buildbot_mq_ordered.util.failurerun import FailureRun
from buildbot_mq_ordered.util.onethread import OneThread


class LeaseKeeper:
    """Owns this router's lease on a shared journal: its holder id, the
    lease's state (``Lease``), the tries and renewals (a thread and a
    connection of their own). ``Leadership`` makes and starts it, and is
    its owner: told ``lead(term)`` and ``step_down(term, reason)``."""

    def __init__(self, journal, owner, log, clock=None, run=None):
        """``run(f, *args)``: runs a call and returns a Deferred (unit tests);
        default: the keeper's thread."""
        from twisted.internet import reactor
        self.journal = journal
        self.owner = owner
        self.log = log
        self.clock = clock or reactor
        self._now = time.monotonic if clock is None else clock.seconds
        self.lease = Lease()
        self.holder = str(uuid.uuid4())
        self._conn = journal.new_connection()
        self._thread = OneThread('journal-lease')
        self._call = run or self._thread.run
        self._loop = task.LoopingCall(self._tick)
        self._loop.clock = self.clock
        self._asking = False
        self._failures = FailureRun()
        self.other_leads_at = None   # when a try found another router's lease running

    def start(self):
        self._loop.start(RENEW_EVERY, now=True)

    def _run(self, f, *args):
        return self._call(f, self._conn, *args)

    def _tick(self):
        now = self._now()
        if self.lease.expired(now):
            self.lose("its lease was not renewed in time")
        if self._asking:
            return
        self._asking = True
        leading = self.lease.leading
        if leading:
            term = self.lease.term
            d = self._run(lease_sql.renew, term, self.lease.seconds)
            d.addCallback(self._renewed, term, now)
        else:
            d = self._run(lease_sql.acquire, self.holder, self.lease.seconds)
            d.addCallback(self._acquired, now)
        d.addErrback(self._failed, now)
        d.addBoth(self._asked, leading)

    def _asked(self, _, was_leading):
        self._asking = False
        # a grant that came late: renew now, not after it ran out
        if not was_leading and self.lease.renew_due(self._now()):
            self._tick()

    def _renewed(self, remaining, term, asked_at):
        self._reconnected()
        if remaining is None and term == self.lease.term:
            self.lose("another router took its lease over")
        elif remaining is not None:
            self.lease.renewed(term, asked_at, remaining)

    def leader_alive(self):
        """This router leads, or the last try to take the lead found another
        router's lease running (tries come every RENEW_EVERY seconds)."""
        if self.lease.leading:
            return True
        seen = self.other_leads_at
        return seen is not None and self._now() - seen < 2 * RENEW_EVERY + 1

    def _acquired(self, grant, asked_at):
        self._reconnected()
        if grant is None:
            self.other_leads_at = asked_at
        else:
            term = grant.term
            self.lease.acquired(term, asked_at, grant.remaining)
            d = defer.maybeDeferred(self.owner.lead, term)
            d.addErrback(self._lead_failed, term)

    def _lead_failed(self, failure, term):
        self.log.failure("sequencer: taking the lead with term {term} failed",
                         failure=failure, term=term)
        if self.lease.term == term:
            self.lose("taking the lead failed")

    def _failed(self, failure, asked_at):
        if lease_sql.busy(failure.value):
            # a commit under way holds the row: a leader is at work
            if not self.lease.leading:
                self.other_leads_at = asked_at
            return
        self._conn.close()    # a new connection next time
        if self.lease.leading:
            self.lose(f"the journal's database is away ({failure.getErrorMessage()})")
        elif self._failures.failed():
            self.log.warn("sequencer: cannot reach the journal {name} to take the lead: "
                          "{err} ({n} tries in a row)", name=self.journal.name,
                          err=failure.getErrorMessage(), n=self._failures.count)

    def _reconnected(self):
        n = self._failures.succeeded()
        if n:
            self.log.info("sequencer: the journal {name} answers again (after {n} failed "
                          "tries)", name=self.journal.name, n=n)

    def lose(self, reason):
        """Stop leading now (a no-op unless leading)."""
        term = self.lease.lost()
        if term is not None:
            self.owner.step_down(term, reason)

    def stop(self):
        """Stop trying; a leader lets the next one in at once."""
        if self._loop.running:
            self._loop.stop()
        term = self.lease.lost()
        self._thread.stop()     # waits for a request under way
        if term is not None:
            try:
                lease_sql.release(self._conn, term)
            except Exception as e:
                self.log.warn("sequencer: could not release the lease of term {term} "
                              "({err}); it runs out by itself", term=term, err=e)
        self._conn.close()
