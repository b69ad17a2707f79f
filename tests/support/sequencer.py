"""A sequencer driven directly, without a router: its publish recorded, its
writer's jobs and key lookups run in place (or the jobs held for the test:
``HeldJobs``) on a clock the test drives (``s.clock``), its log lines kept."""

from collections import deque
from types import SimpleNamespace

from autobahn.wamp.types import ComponentConfig
from twisted.internet import defer
from twisted.internet import task

from buildbot_mq_ordered.router import sequencer as seqmod
from buildbot_mq_ordered.router.journal import Journal


class RecordingLog:
    def __init__(self, said):
        self.said = said

    def __getattr__(self, level):
        return lambda text, **kw: self.said.append((level, text, kw))


class HeldJobs:
    """A writer's ``run``: each job waits until the test runs it, in place,
    in the order they came (``run_next``, ``run_all``)."""

    def __init__(self):
        self.jobs = deque()    # (work, args, deferred)

    def __call__(self, work, *args):
        d = defer.Deferred()
        self.jobs.append((work, args, d))
        return d

    def __len__(self):
        return len(self.jobs)

    def __bool__(self):
        return True     # a run, even with no job held

    def names(self):
        """Each held job by its work's name: 'load', 'append_batches', ... (a callable object: its class's)"""
        return [getattr(work, "__name__", type(work).__name__).lstrip("_")
                for work, _, _ in self.jobs]

    def run_next(self, error=None):
        """The oldest job: its work, or error in its place (nothing done)."""
        work, args, d = self.jobs.popleft()
        if error is not None:
            d.errback(error)
        else:
            defer.maybeDeferred(work, *args).chainDeferred(d)

    def run_all(self, limit=100):
        for _ in range(limit):
            if not self.jobs:
                return
            self.run_next()
        raise AssertionError(f"still jobs after {limit}: {self.names()}")


class Keeper:
    """A lease keeper stand-in: the lease's term, the reasons it was lost."""

    def __init__(self, term):
        self.lease = SimpleNamespace(term=term)
        self.lost = []

    def lose(self, reason):
        self.lost.append(reason)

    def leader_alive(self):
        return True

    def stop(self):
        pass


def make_sequencer(journal=None, log=None, run=defer.maybeDeferred):
    s = seqmod.Sequencer(ComponentConfig('buildbot', {}))
    if log is not None:
        s.log = log
    # the writer's jobs in place: each submit's answer is there at once
    s.clock = task.Clock()
    s.use_journal(journal or Journal(':memory:'), key_cache_size=100, run=run, clock=s.clock)
    # key lookups in place too, whatever the journal (PostgreSQL's run in a thread)
    s.sequencing.lookups.read = s.journal.last_seqs
    s.leadership.leading, s.leadership.term = True, 1
    s.published = []

    def publish(topic, stream_id, entries):
        assert stream_id == s.journal.stream_id   # every event names its stream
        s.published.append((topic, entries))
    s.publish = publish
    return s


def outcome(d):
    """What a submit's Deferred came to, as a list the test reads later:
    [answer] or [the exception]."""
    out = []
    d.addCallbacks(out.append, lambda f: out.append(f.value))
    return out
