"""The fault tests' proof of two leaders: only answers that cannot have
been made in the other order count."""

from twisted.trial import unittest

from tests.support.rolewatch import RoleWatch
from tests.support.takeover import two_leaders


def watch(*answers):
    w = RoleWatch.__new__(RoleWatch)     # its answers only: no session
    w.answers = list(answers)
    return w


class TwoLeaders(unittest.TestCase):

    def test_answers_polled_in_the_same_instant_prove_nothing(self):
        # CI's run: both polls answered 2.33 s after the fault
        leader = watch((101.0, 101.1, True), (102.25, 102.33, False))
        standby = watch((102.30, 102.33, True))
        self.assertIsNone(two_leaders(leader, standby, 100.0))

    def test_a_leading_answer_asked_after_the_standby_led_is_proof(self):
        leader = watch((102.0, 102.01, True), (102.5, 102.51, True), (102.6, 102.61, False))
        standby = watch((102.3, 102.31, True))
        self.assertEqual(two_leaders(leader, standby, 100.0), [2.5, 2.31])

    def test_answers_before_the_fault_do_not_count(self):
        leader = watch((99.5, 99.6, True), (100.5, 100.6, False))
        standby = watch((99.0, 99.1, True), (101.0, 101.1, True))
        self.assertIsNone(two_leaders(leader, standby, 100.0))
