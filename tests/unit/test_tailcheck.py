"""The judge of a rewritten tail (tests/support/tailcheck.py): what a master
ends with, what it dropped, and the run's figures."""

from twisted.trial import unittest

from tests.support.tailcheck import final_history
from tests.support.tailcheck import judge

# the journal the masters end on: positions 1-3 of the old history, then a
# new history from 4 on (the old one had reached 6)
OLD = [(1, ('a', 0)), (2, ('b', 0)), (3, ('a', 1)), (4, ('b', 1)), (5, ('a', 2)),
       (6, ('b', 2))]
NEW = OLD[:3] + [(4, ('a', 3)), (5, ('b', 3)), (6, ('a', 4)), (7, ('b', 4))]


def record(deliveries):
    return {'positions': [p for p, _ in deliveries],
            'delivered': [list(m) for _, m in deliveries]}


class FinalHistory(unittest.TestCase):

    def test_going_back_replaces_what_followed(self):
        kept, rewritten, rewinds = final_history(*record(OLD + NEW[3:]).values())
        self.assertEqual(kept, NEW)
        self.assertEqual(rewritten, OLD[3:])
        self.assertEqual(rewinds, 1)


class Judge(unittest.TestCase):
    produced = {'a': 5, 'b': 5}

    def test_masters_that_took_up_the_new_history(self):
        records = {'m0': record(OLD + NEW[3:]), 'm1': record(NEW)}
        figures, problems = judge(NEW, records, self.produced, {'m0': 1, 'm1': 0})
        self.assertEqual(problems, [])
        self.assertTrue(figures['same_everywhere'])
        self.assertEqual(figures['rewrite_point'], 4)
        self.assertEqual(figures['delivered'], {'m0': 10, 'm1': 7})
        self.assertEqual(figures['rewritten_tail'], {'m0': 3, 'm1': 0})
        # b1, a2, b2 were delivered and are gone; nothing else is missing
        self.assertEqual((figures['acknowledged_lost'], figures['lost']), (3, 3))
        self.assertEqual(figures['recovered'], 0)

    def test_a_master_that_skipped_to_its_own_position(self):
        # what masters did before terms: the new 4-6 taken as delivered
        records = {'m0': record(OLD + NEW[6:]), 'm1': record(NEW)}
        figures, problems = judge(NEW, records, self.produced, {})
        self.assertFalse(figures['same_everywhere'])
        self.assertEqual(figures['dropped'], {'m0': 3, 'm1': 0})
        self.assertEqual(problems,
                         ["m0 never delivered the journal's message at 3 positions 4-6"])

    def test_a_master_that_went_back_twice_or_wrote_nothing(self):
        records = {'m0': record(NEW[:5] + NEW[3:5] + NEW[3:]), 'm1': None}
        figures, problems = judge(NEW, records, self.produced, {})
        self.assertEqual(problems, ['m0 went back 2 times', 'm1 wrote no result'])
        self.assertEqual(figures['dropped'], {'m0': 0, 'm1': 7})
