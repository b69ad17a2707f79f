"""One number per position (issue 21, item 3): a step-down and a new lead
on the same router, or a batch refused while the journal is read again,
never number a position twice. The writer's jobs wait for the test
(``HeldJobs``), so loads and batches come in the order the issue saw:
``step_down`` -> load #1, ``lead`` asks for load #2 while #1 runs, batches
between them."""

import sqlite3

from hypothesis import given
from hypothesis import settings
from hypothesis import strategies as st
from twisted.internet import defer
from twisted.trial import unittest

from buildbot_mq_ordered.router.journal import Journal
from tests.support.sequencer import HeldJobs
from tests.support.sequencer import Keeper
from tests.support.sequencer import make_sequencer
from tests.support.sequencer import outcome


class Appends:
    """Wraps a journal's append_batches: the positions of every commit
    tried, and the errors the journal itself raised (not the test's)."""

    def __init__(self, journal):
        self.tried = []
        self.errors = []
        self._real = journal.append_batches
        journal.append_batches = self

    def __call__(self, batches):
        self.tried.append([e[0] for b in batches for e in b[0]])
        try:
            return self._real(batches)
        except sqlite3.Error as e:
            self.errors.append(str(e))
            raise


class Renumbering(unittest.TestCase):

    def setUp(self):
        self.jobs = HeldJobs()
        self.s = make_sequencer(Journal(self.mktemp()), run=self.jobs)
        self.addCleanup(lambda: self.s.journal.close())
        self.appends = Appends(self.s.journal)
        self.s.serve = lambda still_leads: defer.succeed(still_leads())
        self.keeper = self.s.leadership.keeper = Keeper(1)

    def send(self, producer, pseq, key):
        return outcome(defer.maybeDeferred(
            self.s.submit, producer, [[pseq, [key], b'x']]))

    def positions(self):
        return [e[0] for e in self.s.journal.read(1, 1000)]

    def tried_twice(self):
        tried = [pos for group in self.appends.tried for pos in group]
        return sorted({pos for pos in tried if tried.count(pos) > 1})

    def test_a_step_down_and_a_new_lead_never_number_a_position_twice(self):
        first = self.send('p', 1, 'k')
        self.jobs.run_next()
        self.assertEqual(first, [[1, 1, 0]])
        # term 1 is lost: load #1 (the step-down's) starts
        self.s.leadership.step_down(1, "its lease was not renewed in time")
        self.assertEqual(self.jobs.names(), ['load'])
        # term 3 on the same router: its reload is asked for while #1 runs
        self.keeper.lease.term = 3
        self.s.leadership.lead(3)
        self.jobs.run_next()                      # load #1 ends
        between = [self.send('q', 1, 'k'), self.send('r', 1, 'k2')]
        if self.jobs.names() == ['load']:
            self.jobs.run_next()                  # load #2 (the lead's)
        after = [self.send('s', 1, 'k'), self.send('t', 1, 'k')]
        self.jobs.run_all()
        self.assertEqual((self.s.leadership.leading, self.s.leadership.term), (True, 3))
        self.assertEqual(self.tried_twice(), [])
        self.assertEqual(self.appends.errors, [])
        self.assertEqual(self.positions(), list(range(1, len(self.positions()) + 1)))
        acked = [o[0][1] for o in between + after if isinstance(o[0], list)]
        self.assertEqual(len(acked), len(set(acked)))
        self.assertEqual([o[0] for o in after], [[1, 2, 0], [1, 3, 0]])

    def test_a_batch_refused_while_the_journal_is_read_again_asks_for_no_other_load(self):
        self.s.leadership.keeper = None          # SQLite: the same path
        first = self.send('p', 1, 'k')
        self.jobs.run_next(OSError("disk I/O error"))
        self.assertEqual(self.jobs.names(), ['load'])
        refused = self.send('q', 1, 'k')       # while load #1 runs
        self.jobs.run_next()                     # load #1 ends
        self.flushLoggedErrors()
        later = [self.send('r', 1, 'k')]
        if self.jobs.names() == ['load']:
            self.jobs.run_next()                 # a second load, under r's batch
        later += [self.send('s', 1, 'k')]
        self.jobs.run_all()
        self.assertIsInstance(first[0], Exception)
        self.assertIsInstance(refused[0], Exception)
        self.assertEqual(self.tried_twice(), [])   # (the failed commit never ran)
        self.assertEqual(self.appends.errors, [])
        self.assertEqual([o[0] for o in later], [[1, 1, 0], [1, 2, 0]])
        self.assertEqual(self.positions(), [1, 2])


# one step of a run: who submits which key, a job run (or failed), a
# step-down and a new lead, time passing; a job run as often as a submit
STEPS = st.sampled_from([('submit', 0, 0), ('submit', 1, 1), ('submit', 2, 0),
                         ('run',), ('run',), ('run',), ('fail',), ('relead',), ('tick',)])


class Interleavings(unittest.TestCase):

    @settings(max_examples=300, deadline=None, derandomize=True)
    @given(st.lists(STEPS, min_size=5, max_size=30))
    def test_positions_committed_are_unique_and_consecutive(self, steps):
        jobs = HeldJobs()
        s = make_sequencer(Journal(':memory:'), run=jobs)
        appends = Appends(s.journal)
        s.serve = lambda still_leads: defer.succeed(still_leads())
        keeper = s.leadership.keeper = Keeper(1)
        sent = {}
        acks = []
        for step in steps:
            if step[0] == 'submit':
                producer = f'p{step[1]}'
                sent[producer] = sent.get(producer, 0) + 1
                acks.append(outcome(defer.maybeDeferred(
                    s.submit, producer, [[sent[producer], [f'k{step[2]}'], b'x']])))
            elif step[0] in ('run', 'fail') and len(jobs):
                jobs.run_next(OSError("journal away") if step[0] == 'fail' else None)
            elif step[0] == 'relead' and s.leadership.leading:
                s.leadership.step_down(keeper.lease.term, "lease lost")
                keeper.lease.term += 1
                s.leadership.lead(keeper.lease.term)
            elif step[0] == 'tick':
                s.clock.advance(1)
        for _ in range(20):          # what is under way ends
            jobs.run_all()
            s.clock.advance(1)
        self.flushLoggedErrors()
        self.assertEqual(appends.errors, [])
        entries = s.journal.read(1, 1000)
        self.assertEqual([e[0] for e in entries], list(range(1, len(entries) + 1)))
        for key in {tuple(e[2]) for e in entries}:
            seqs = [e[1] for e in entries if tuple(e[2]) == key]
            self.assertEqual(seqs, list(range(1, len(seqs) + 1)))
        acked = [a[0][1] for a in acks if a and isinstance(a[0], list) and a[0][1]]
        self.assertEqual(len(acked), len(set(acked)))
        self.assertLessEqual(set(acked), {e[0] for e in entries})
        s.journal.close()
