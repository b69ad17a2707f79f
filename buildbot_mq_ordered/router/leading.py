"""Whether this router's sequencer leads, and the moves in and out of the
lead.

With SQLite the journal is this router's alone: it leads term 1 for good
(the journal began a term of its own when it was opened).
With PostgreSQL every router started with the database is a candidate; the
holder of the lease (``LeaseKeeper``) leads. Taking the lead, it reads the
journal again (another router may have written it) and numbers on from
there, then serves; losing it, it stops at once: the procedures go, what is
queued fails, nothing more is published.
"""

from autobahn.wamp.exception import ApplicationError
from twisted.internet import defer
from twisted.python.failure import Failure

from buildbot_mq_ordered import wire
from buildbot_mq_ordered.router.journal.lease import Deposed
from buildbot_mq_ordered.router.leasekeeper import LeaseKeeper


class Leadership:
    """Owns whether this sequencer leads and its term, and the lease keeper
    of a shared journal. The Sequencer makes and starts it, and serves the
    procedures when told (``owner.serve``, ``owner.unserve``); the lease
    keeper calls ``lead`` and ``step_down``; the sequencing asks
    ``leading``, and is told to read the journal again (``reload``) or to
    fail what waits and what is queued (``fail``)."""

    def __init__(self, journal, sequencing, owner, log, realm):
        self.journal = journal
        self.sequencing = sequencing
        self.owner = owner
        self.log = log
        self.realm = realm
        self.leading = False   # the procedures registered (or about to be)
        self.term = None
        self.keeper = None     # a shared journal's lease

    def start(self):
        """Lead for good (SQLite), or stand as a candidate (PostgreSQL)."""
        if not hasattr(self.journal, 'new_connection'):
            return self._lead(1)
        # shared by every router started with it: the lease's holder leads
        self.journal.fenced = True
        self.keeper = LeaseKeeper(self.journal, self, self.log)
        self.log.info("sequencer ready on realm {realm}: journal {path}, a candidate "
                      "for the lead", realm=self.realm, path=self.journal.name)
        self.keeper.start()

    def stop(self):
        if self.keeper is not None:
            self.keeper.stop()

    def role(self):
        """This sequencer's part: leading, and whether some router leads."""
        alive = self.leading if self.keeper is None else self.keeper.leader_alive()
        return {'leader': self.leading, 'term': self.term, 'leader_alive': alive}

    # the lease keeper's owner

    @defer.inlineCallbacks
    def lead(self, term):
        """This router took the lease: number on from what the journal holds
        (another router may have written it), then serve. The reload is
        answered by a load that started after it was asked for: one that
        began before (a step-down's) may have read the journal before this
        router's last commits ended. That load begins the journal's new term
        (a new term id) before anything is numbered under it."""
        self.journal.take_lease(term)
        try:
            yield self.sequencing.reload()
        except Exception as e:
            self.keeper.lose(f"it cannot read the journal ({wire.shown(str(e))})")
            return
        if self.keeper.lease.term == term:   # not lost meanwhile
            yield self._lead(term)

    def step_down(self, term, reason):
        """Stop at once: serve nothing, publish nothing more, fail what is
        queued; a candidate again."""
        self.leading = False
        self.journal.take_lease(None)
        self.log.warn("sequencer: no longer leads realm {realm} (term {term}): {reason}; "
                      "a candidate again", realm=self.realm, term=term,
                      reason=wire.shown(reason))
        self.sequencing.fail(Failure(Deposed(reason)))
        self.owner.unserve()

    @defer.inlineCallbacks
    def _lead(self, term):
        self.term = term
        self.leading = True
        try:
            served = yield self.owner.serve(lambda: self.leading and self.term == term)
        except ApplicationError as e:
            self.log.error("sequencer: cannot register on realm {realm}: {err} "
                           "(is another sequencer running?)",
                           realm=self.realm, err=wire.shown(e.error_message()))
            if self.keeper is None:
                self.owner.leave()
            else:
                self.keeper.lose("it cannot register the sequencer's procedures")
            return
        if not served:
            return
        if self.keeper is None:
            self.log.info("sequencer ready on realm {realm}: journal {path}, "
                          "next position {pos}", realm=self.realm,
                          path=self.journal.name, pos=self.journal.last_pos + 1)
        else:
            self.log.info("sequencer leads realm {realm} with term {term}: journal {path}, "
                          "next position {pos}", realm=self.realm, term=term,
                          path=self.journal.name, pos=self.journal.last_pos + 1)
