"""Key lookups off the reactor (issue 21, item 4): submits numbered in
arrival order, a submit with a key the numbering does not know waiting for
one batched lookup, and the submits behind it waiting too. Arrivals alone
(lookups answered by hand), then the sequencing with its lookups held."""

from autobahn.wamp.exception import ApplicationError
from twisted.internet import defer
from twisted.trial import unittest

from buildbot_mq_ordered import wire
from buildbot_mq_ordered.router.arrivals import Arrivals
from buildbot_mq_ordered.router.journal import Journal
from tests.support.sequencer import HeldJobs
from tests.support.sequencer import Keeper
from tests.support.sequencer import RecordingLog
from tests.support.sequencer import make_sequencer
from tests.support.sequencer import outcome


class HeldLookups:
    """A lookup stand-in: each call waits for the test to answer it."""

    def __init__(self):
        self.asked = []    # (keys, deferred)

    def __call__(self, keys):
        d = defer.Deferred()
        self.asked.append((keys, d))
        return d

    def answer(self, seqs=None, error=None):
        keys, d = self.asked.pop(0)
        if error is not None:
            d.errback(error)
        else:
            d.callback({k: (seqs or {}).get(k, 0) for k in keys})


class ArrivalsTest(unittest.TestCase):

    def setUp(self):
        self.known = {'a'}
        self.lookups = HeldLookups()
        self.arrivals = Arrivals(lambda k: k in self.known, self.lookups)
        self.numbered = []

    def admit(self, name, keys):
        def number():
            self.numbered.append(name)
            self.known.update(keys)     # numbered: now in the numbering's cache
            return name
        return outcome(self.arrivals.admit(set(keys), number))


class Order(ArrivalsTest):

    def test_known_keys_and_nobody_waiting_are_numbered_at_once(self):
        self.assertEqual(self.admit('s1', ['a']), ['s1'])
        self.assertEqual(self.lookups.asked, [])

    def test_a_missing_key_holds_its_submit_and_every_one_behind_it(self):
        first = self.admit('s1', ['a', 'b'])
        second = self.admit('s2', ['a'])         # known, but behind s1
        third = self.admit('s3', ['c'])
        self.assertEqual(self.numbered, [])
        self.assertEqual(self.lookups.asked[0][0], ['b'])
        self.lookups.answer({'b': 7})
        # numbered in arrival order; c came during the lookup: asked next
        self.assertEqual(self.numbered, ['s1', 's2'])
        self.assertEqual((first, second, third), (['s1'], ['s2'], []))
        self.assertEqual(self.lookups.asked[0][0], ['c'])
        self.lookups.answer()
        self.assertEqual(self.numbered, ['s1', 's2', 's3'])
        self.assertEqual(self.arrivals.found, {})

    def test_every_key_missing_from_the_waiting_submits_is_one_lookup(self):
        for i, keys in enumerate([['b'], ['c', 'b'], ['e', 'a'], ['d', 'c']]):
            self.admit(f's{i}', keys)
        self.lookups.answer()          # b: s0 numbered, then c, e, d at once
        self.assertEqual(self.numbered, ['s0'])
        self.assertEqual([keys for keys, _ in self.lookups.asked], [['c', 'e', 'd']])
        self.lookups.answer()
        self.assertEqual(self.numbered, ['s0', 's1', 's2', 's3'])

    def test_a_number_looked_up_is_taken_once(self):
        self.admit('s1', ['b'])
        self.arrivals.found['b'] = 3
        self.assertEqual(self.arrivals.take('b'), 3)
        self.assertIsNone(self.arrivals.take('b'))

    def test_a_lookup_answered_in_place_goes_on_in_the_same_call(self):
        arrivals = Arrivals(lambda k: False, lambda keys: defer.succeed(dict.fromkeys(keys, 0)))
        answers = [outcome(arrivals.admit({k}, lambda k=k: k)) for k in 'xyz']
        self.assertEqual(answers, [['x'], ['y'], ['z']])


class Failures(ArrivalsTest):

    def test_a_failed_lookup_fails_every_waiting_submit_with_a_journal_error(self):
        waiting = [self.admit('s1', ['b']), self.admit('s2', ['a'])]
        self.lookups.answer(error=OSError("canceling statement due to statement timeout " +
                                          "x" * 5000))
        for w in waiting:
            self.assertIsInstance(w[0], ApplicationError)
            self.assertEqual(w[0].error, wire.JOURNAL_ERROR)
            self.assertLess(len(w[0].args[0]), 400)     # the error cut
        self.assertEqual(self.numbered, [])
        self.assertEqual(self.admit('s3', ['a']), ['s3'])    # nobody waits now

    def test_a_step_down_fails_what_waits_and_the_late_answer_counts_for_nothing(self):
        waiting = self.admit('s1', ['b'])
        self.arrivals.fail(ApplicationError(wire.JOURNAL_ERROR, "no longer leads"))
        self.assertEqual(waiting[0].error, wire.JOURNAL_ERROR)
        later = self.admit('s2', ['c'])
        self.lookups.answer({'b': 9})             # the first lookup, late
        self.assertEqual((self.numbered, self.arrivals.found), ([], {}))
        self.lookups.answer({'c': 2})
        self.assertEqual((self.numbered, later), (['s2'], ['s2']))

    def test_too_many_waiting_are_refused_busy(self):
        self.arrivals.max_waiting = 2
        self.admit('s1', ['b'])
        self.admit('s2', ['a'])
        self.assertEqual(self.admit('s3', ['a'])[0].error, wire.BUSY)

    def test_stopped_it_refuses_and_fails_what_waits(self):
        waiting = self.admit('s1', ['b'])
        self.arrivals.stop()
        self.assertEqual(waiting[0].error, wire.JOURNAL_ERROR)
        self.assertEqual(self.admit('s2', ['a'])[0].error, wire.JOURNAL_ERROR)


class SequencingLookups(unittest.TestCase):
    """The sequencing with its lookups held: as after a take-over (an empty
    key cache) on a journal already written."""

    def setUp(self):
        path = self.mktemp()
        s = make_sequencer(Journal(path))
        s.submit('old', [[1, ['a'], b'1'], [2, ['a'], b'2'], [3, ['b'], b'3']])
        s.journal.close()
        self.said = []
        self.s = make_sequencer(Journal(path), log=RecordingLog(self.said))
        self.addCleanup(lambda: self.s.journal.close())
        self.held = HeldLookups()
        self.s.sequencing.lookups.read = self.held

    def send(self, producer, key):
        return outcome(self.s.submit(producer, [[1, [key], b'x']]))

    def test_submits_wait_in_order_and_number_on_from_the_journal(self):
        first, second, third = self.send('p', 'a'), self.send('q', 'a'), self.send('r', 'c')
        self.assertEqual([keys for keys, _ in self.held.asked], [[('a',)]])
        self.assertEqual(self.s.published, [])     # nothing numbered meanwhile
        self.held.answer({('a',): 2})
        self.assertEqual((first, second, third), ([[1, 4, 0]], [[1, 5, 0]], []))
        self.held.answer()        # c: asked once a was answered
        self.assertEqual(third, [[1, 6, 0]])
        self.assertEqual([list(e[:3]) for e in self.s.journal.read(4, 10)],
                         [[4, 3, ['a']], [5, 4, ['a']], [6, 1, ['c']]])

    def test_a_failed_lookup_refuses_and_is_one_error_line(self):
        waiting = [self.send('p', 'a'), self.send('q', 'c')]
        self.held.answer(error=OSError("server closed the connection"))
        self.assertEqual([w[0].error for w in waiting], [wire.JOURNAL_ERROR] * 2)
        self.assertEqual([level for level, _, _ in self.said], ['error'])
        retried = self.send('p', 'a')
        self.held.answer({('a',): 2})
        self.assertEqual(retried, [[1, 4, 0]])
        self.assertEqual([level for level, _, _ in self.said], ['error', 'info'])

    def test_a_step_down_fails_what_waits(self):
        self.s.leadership.keeper = Keeper(1)
        waiting = self.send('p', 'a')
        self.s.leadership.step_down(1, "its lease was not renewed in time")
        self.assertEqual(waiting[0].error, wire.JOURNAL_ERROR)
        self.assertIn('no longer leads', waiting[0].args[0])
        self.held.answer({('a',): 2})
        self.assertEqual(self.s.published, [])
        self.assertEqual(self.s.journal.last_pos, 3)

    def test_a_key_evicted_but_in_a_batch_not_yet_committed_needs_no_lookup(self):
        jobs = HeldJobs()
        s = make_sequencer(Journal(self.mktemp()), run=jobs)
        self.addCleanup(lambda: s.journal.close())
        s.sequencing.lookups.read = self.held
        s.sequencing.numbering._key_cache_size = 1
        answers = [outcome(s.submit(p, [[1, [k], b'x']])) for p, k in (('p', 'x'), ('q', 'y'))]
        self.held.answer()
        self.held.answer()
        self.assertEqual(s.sequencing.numbering.cached(('x',)), None)   # evicted by y
        answers.append(outcome(s.submit('r', [[1, ['x'], b'x']])))
        self.assertEqual(self.held.asked, [])
        jobs.run_all()
        self.assertEqual(answers, [[[1, 1, 0]], [[1, 2, 0]], [[1, 3, 0]]])
        self.assertEqual([e[1] for e in s.journal.read(1, 10)], [1, 1, 2])
