"""The sequencer: a WAMP component that gives every message its place.

It runs inside the Crossbar router worker (a router component in the node
config written by ``buildbot-mq-ordered router``), so sequencing adds no
network hop. It registers the submit and replay procedures with the default
'single' invocation policy: a second sequencer on the realm is refused.

Per submitted batch: number it (``Numbering``, on the reactor), hand it to
the journal's writer (``JournalWriter``: group commit); once a group is
committed, publish it (one stream event for the group), then acknowledge
each submitter, in position order, in one reactor turn (a master sees its
own batch's event before the acknowledgement, as it always did).
Replays are read off the reactor too
(``JournalReader``). No buildbot imports: the router host needs only
crossbar.
"""

import gc
import os
import time

from autobahn.twisted.wamp import ApplicationSession
from autobahn.wamp.exception import ApplicationError
from autobahn.wamp.types import RegisterOptions
from twisted.internet import defer
from twisted.internet import task
from twisted.internet import threads
from twisted.python.failure import Failure

from buildbot_mq_ordered import wire
from buildbot_mq_ordered.router.journal import JournalReader
from buildbot_mq_ordered.router.journal import open_journal
from buildbot_mq_ordered.router.journal.lease import Deposed
from buildbot_mq_ordered.router.leasekeeper import LeaseKeeper
from buildbot_mq_ordered.router.monitor import metrics
from buildbot_mq_ordered.router.numbering import Numbering
from buildbot_mq_ordered.router.writer import JournalWriter
from buildbot_mq_ordered.util import nodelay
from buildbot_mq_ordered.util.failurerun import FailureRun

# the router worker's WebSocket connections: no Nagle (see nodelay.py)
nodelay.install_in_router()

# seconds between journal checkpoints (run in a thread, off the reactor)
CHECKPOINT_EVERY = 1.0
# replays under way: per caller session (a master has one at a time) and in all
MAX_REPLAYS_PER_SESSION = 2
MAX_REPLAYS = 16


def _events(entries):
    """A group's entries as stream events of at most wire.MAX_EVENT_BYTES of data
    (one message may be larger alone): every master's frame stays well under
    the router's limit however many batches a group holds."""
    event, size = [], 0
    for entry in entries:
        n = len(entry[3])
        if event and size + n > wire.MAX_EVENT_BYTES:
            yield event
            event, size = [], 0
        event.append(entry)
        size += n
    if event:
        yield event


class Sequencer(ApplicationSession):

    def __init__(self, config=None):
        super().__init__(config)
        self._journal_failures = FailureRun()
        self.bind_producers = False
        self._replays = []     # caller session of each replay under way
        self.leading = False   # submit, replay and info registered (or about to be)
        self.term = None
        self._procedures = []  # (not _registrations: ApplicationSession's own)
        self._keeper = None    # a PostgreSQL journal's lease

    @defer.inlineCallbacks
    def onJoin(self, details):
        extra = self.config.extra or {}
        location = extra.get('journal') or os.path.join(os.getcwd(), 'sequencer.sqlite')
        self.journal = open_journal(
            location,
            retention_messages=extra.get('retention_messages', 1000000),
            retention_seconds=extra.get('retention_seconds', 7 * 86400),
            fsync=extra.get('fsync', False), background_checkpoint=True)
        self._checkpointing = False
        self._checkpoints = task.LoopingCall(self._checkpoint)
        self._checkpoints.start(CHECKPOINT_EVERY, now=False)
        self.bind_producers = extra.get('bind_producers', False)
        self._setup(extra.get('key_cache_size', 10000))
        # on this router only, leading or not: the monitor's /healthz asks it
        yield self.register(self.role, wire.ROLE)
        if hasattr(self.journal, 'new_connection'):
            # shared by every router started with it: the lease's holder leads
            self.journal.fenced = True
            self._keeper = LeaseKeeper(self.journal, self, self.log)
            self.log.info("sequencer ready on realm {realm}: journal {path}, a candidate "
                          "for the lead", realm=self.config.realm, path=self.journal.name)
            self._keeper.start()
        else:
            yield self._lead(1)
        # the router worker's start-up objects (Crossbar: ~1M) stay for its
        # lifetime: out of the collector's way, or a full collection while
        # messages flow stalls every master for 100+ ms
        gc.collect()
        gc.freeze()

    def _setup(self, key_cache_size, run=None):
        """Reader, writer and numbering for self.journal (``run``: how the
        writer runs its jobs; unit tests run them in place)."""
        self._key_cache_size = key_cache_size
        self._reader = JournalReader(self.journal)
        self.writer = JournalWriter(self.journal, self, run=run)
        self.reloaded(self.journal.producer_marks())

    @defer.inlineCallbacks
    def _lead(self, term):
        self.term = term
        self.leading = True
        try:
            for procedure, uri, details in ((self.submit, wire.SUBMIT, True),
                                            (self.replay, wire.REPLAY, True),
                                            (self.info, wire.INFO, False)):
                options = RegisterOptions(details_arg='details') if details else None
                registration = yield self.register(procedure, uri, options=options)
                if not self.leading or self.term != term:
                    # the lease was lost meanwhile: step_down unregistered the others
                    yield registration.unregister()
                    return
                self._procedures.append(registration)
        except ApplicationError as e:
            self.log.error("sequencer: cannot register on realm {realm}: {err} "
                           "(is another sequencer running?)",
                           realm=self.config.realm, err=e.error_message())
            if self._keeper is None:
                self.leave()
            else:
                self._keeper.lose("it cannot register the sequencer's procedures")
            return
        if self._keeper is None:
            self.log.info("sequencer ready on realm {realm}: journal {path}, "
                          "next position {pos}", realm=self.config.realm,
                          path=self.journal.name, pos=self.journal.last_pos + 1)
        else:
            self.log.info("sequencer leads realm {realm} with term {term}: journal {path}, "
                          "next position {pos}", realm=self.config.realm, term=term,
                          path=self.journal.name, pos=self.journal.last_pos + 1)

    # the lease keeper's owner (PostgreSQL journal)

    @defer.inlineCallbacks
    def lead(self, term):
        """This router took the lease: number on from what the journal holds
        (another router may have written it), then serve."""
        self.journal.term = term
        try:
            yield self.writer.reload()
        except Exception as e:
            self._keeper.lose(f"it cannot read the journal ({e})")
            return
        if self._keeper.lease.term == term:   # not lost meanwhile
            yield self._lead(term)

    def step_down(self, term, reason):
        """Stop at once: register nothing, publish nothing more, fail what is
        queued; a candidate again."""
        self.leading = False
        self.journal.term = None
        self.log.warn("sequencer: no longer leads realm {realm} (term {term}): {reason}; "
                      "a candidate again", realm=self.config.realm, term=term, reason=reason)
        self.writer.fail(Failure(Deposed(reason)))
        registrations, self._procedures = self._procedures, []
        for registration in registrations:
            defer.maybeDeferred(registration.unregister).addErrback(lambda f: None)

    def _must_lead(self):
        if not self.leading:
            raise ApplicationError(wire.JOURNAL_ERROR, "this router does not lead the sequence "
                                                  "(any more): try again or another router")

    # the writer's owner: numbering follows what the journal really holds

    def reloaded(self, marks):
        """Number on from the journal (at start, and after a failed commit
        once the writer is idle: nothing pending)."""
        self.head = self.journal.last_pos   # published: everything committed is
        self.numbering = Numbering(
            last_pos=self.journal.last_pos, producer_marks=marks,
            lookup_seq=self._lookup_seq, key_cache_size=self._key_cache_size)

    def _lookup_seq(self, key):
        # a key that fell out of the numbering's cache: a batch still on its
        # way to the journal may have the newest number
        seq = self.writer.pending_seq(key)
        return self.journal.last_seq(key) if seq is None else seq

    def pruned(self, marks):
        # marks unused for the retention time are gone from the journal;
        # those of batches not yet committed are not in it yet
        pending = self.writer.pending_producers()
        self.numbering.producer_marks = {
            p: m for p, m in self.numbering.producer_marks.items()
            if p in marks or p in pending}

    def prune_failed(self, failure):
        self.log.warn("sequencer: applying the journal's retention failed ({err}); "
                      "tried again later", err=failure.value)

    def _checkpoint(self):
        if self._checkpointing or self.journal is None:
            return
        self._checkpointing = True
        d = threads.deferToThread(self.journal.checkpoint)

        def done(result):
            self._checkpointing = False
            return result
        d.addBoth(done)
        d.addErrback(lambda f: self.log.warn("sequencer: journal checkpoint failed: {err}",
                                             err=f.getErrorMessage()))

    def onLeave(self, details):
        if self._keeper is not None:
            self._keeper.stop()
        checkpoints = getattr(self, '_checkpoints', None)
        if checkpoints is not None and checkpoints.running:
            checkpoints.stop()
        for part in (getattr(self, '_reader', None), getattr(self, 'writer', None)):
            if part is not None:
                part.stop()
        journal = getattr(self, 'journal', None)
        if journal is not None:
            journal.close()
            self.journal = None
        super().onLeave(details)

    def submit(self, *args, details=None, **kwargs):
        # any shape a client may send: only the right one gets past here
        producer, messages = args if len(args) == 2 and not kwargs else (None, None)
        if not wire.is_producer_id(producer) or not isinstance(messages, list) or \
                not all(wire.is_submission(m) for m in messages):
            self.log.warn("sequencer: ignoring a malformed submit (producer {p!r})",
                          p=producer[:wire.MAX_PRODUCER_ID] if isinstance(producer, str)
                          else type(producer))
            raise ApplicationError(wire.MALFORMED, "malformed submit")
        if self.bind_producers:
            # who the router says the caller is, not what it says of itself:
            # no master can advance another one's mark
            authid = getattr(details, 'caller_authid', None)
            if not authid:
                raise ApplicationError(wire.NOT_BOUND, "the router did not disclose the caller")
            producer = f"{authid}/{producer}"
        self._must_lead()
        started = time.perf_counter()
        entries, mark = self.numbering.assign(
            producer, ((m[0], tuple(m[1]), m[2]) for m in messages))
        d = self.writer.write(entries, producer, mark)
        d.addCallbacks(self._committed, self._not_committed,
                       callbackArgs=(entries, mark, started))
        return d

    def committed(self, entries):
        """The writer committed a group (several batches, in position order):
        publish it before any of its batches is answered, in the same
        reactor turn, so that on a submitter's connection its event goes
        first (a stopping master counts on it). One stream event per group,
        not per batch: a burst of submits costs each master one event."""
        if not entries or not self.leading:
            # committed under a lease since lost: masters replay it from the
            # journal, the submitter's retry finds it sequenced
            return
        self.head = entries[-1][0]
        for event in _events(entries):
            self.publish(wire.STREAM, self.journal.stream_id, event)

    def _committed(self, _, entries, mark, started):
        self._must_lead()
        if not entries:
            return [mark, None]
        failures = self._journal_failures.succeeded()
        if failures:
            self.log.info("sequencer: the journal takes writes again (after {n} failed)",
                          n=failures)
        metrics.observe_commit(time.perf_counter() - started, len(entries))
        return [mark, entries[-1][0]]

    def _not_committed(self, failure):
        # nothing acknowledged, nothing published: the writer has the
        # numbering reloaded from the journal, and the master retries
        e = failure.value
        if self._journal_failures.failed():
            self.log.error("sequencer: cannot write the journal {path}: {err} "
                           "({n} failed writes in a row); masters retry",
                           path=self.journal.name, err=e, n=self._journal_failures.count)
        raise ApplicationError(wire.JOURNAL_ERROR, f"journal write failed: {e}")

    def replay(self, *args, details=None, **kwargs):
        if kwargs or not 1 <= len(args) <= 2 or \
                not all(type(a) is int and 0 <= a < 2 ** 63 for a in args):
            raise ApplicationError(wire.MALFORMED, "replay takes (from_pos, limit)")
        self._must_lead()
        from_pos, limit = args if len(args) == 2 else (args[0], wire.MAX_REPLAY)
        limit = min(limit, wire.MAX_REPLAY)
        j = self.journal
        # the oldest position before the read (the read starts at or after
        # it), the head when answering: at least every position published
        # before this answer, which travels behind those events
        first_pos = j.first_pos
        start = max(from_pos, first_pos)
        if not limit or start > self.head:
            return defer.succeed([j.stream_id, first_pos, self.head, []])
        # a master replays one range at a time; a flood of replays must not
        # make the router hold hundreds of MB nor stall everyone else
        caller = getattr(details, 'caller', None)
        if len(self._replays) >= MAX_REPLAYS or \
                self._replays.count(caller) >= MAX_REPLAYS_PER_SESSION:
            raise ApplicationError(wire.BUSY, "too many replays under way; retry later")
        self._replays.append(caller)
        # read off the reactor (a connection of the reader thread's own), and
        # bounded by bytes too: the answer must fit the router's frames
        d = self._reader.read(start, limit, wire.MAX_REPLAY_BYTES)

        def done(result):
            self._replays.remove(caller)
            return result
        d.addBoth(done)
        # committed but not yet published (its event is on its way): not yet
        d.addCallback(lambda entries: [j.stream_id, first_pos, self.head,
                                       [e for e in entries if e[0] <= self.head]])
        return d

    def role(self, *args, **kwargs):
        """This sequencer's part: leading, and whether some router leads."""
        alive = self.leading if self._keeper is None else self._keeper.leader_alive()
        return {'leader': self.leading, 'term': self.term, 'leader_alive': alive}

    def info(self, *args, **kwargs):
        if args or kwargs:
            raise ApplicationError(wire.MALFORMED, "info takes no arguments")
        self._must_lead()
        j = self.journal
        return {'stream_id': j.stream_id, 'head': self.head, 'first_pos': j.first_pos,
                'term': self.term, 'journal_rows': max(0, self.head - j.first_pos + 1)}
