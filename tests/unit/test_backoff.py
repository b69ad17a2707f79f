"""Backoff: the one rule for delays between tries (reconnects, replays)."""

import random

from twisted.trial import unittest

from buildbot_mq_ordered.util.backoff import Backoff


class Delays(unittest.TestCase):

    def test_grows_from_the_first_delay_up_to_the_maximum(self):
        backoff = Backoff(0.5, 2.0, 3.0)
        self.assertEqual([backoff(n) for n in range(1, 6)], [0.5, 1.0, 2.0, 3.0, 3.0])

    def test_no_failure_yet_waits_the_first_delay(self):
        # a lost session is retried after the first delay
        self.assertEqual(Backoff(0.5, 2.0, 3.0)(0), 0.5)

    def test_without_jitter_delays_are_exact(self):
        backoff = Backoff(1.0, 2.0, 60.0)
        self.assertEqual([backoff(n) for n in (1, 2, 7, 8)], [1.0, 2.0, 60.0, 60.0])

    def test_jitter_spreads_around_the_delay_never_below_zero(self):
        backoff = Backoff(1.0, 1.5, 10.0, jitter=0.1, rng=random.Random(7))
        delays = [backoff(3) for _ in range(200)]
        self.assertGreater(len(set(delays)), 100)
        self.assertLess(abs(sum(delays) / len(delays) - 2.25), 0.05)
        self.assertTrue(all(d >= 0 for d in delays))
        wild = Backoff(1.0, 1.5, 10.0, jitter=5.0, rng=random.Random(7))
        self.assertTrue(all(wild(1) >= 0 for _ in range(200)))
