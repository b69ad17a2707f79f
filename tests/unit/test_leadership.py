"""The leadership decisions (pure): when a leader stops leading."""

from twisted.trial import unittest

from buildbot_mq_ordered.router.leadership import Lease


class LeaseDecisions(unittest.TestCase):

    def test_a_leader_stops_before_its_lease_can_be_taken_over(self):
        lease = Lease(seconds=3, margin=0.5)
        self.assertFalse(lease.leading)
        self.assertFalse(lease.expired(100))
        lease.acquired(7, asked_at=100)
        self.assertTrue(lease.leading)
        self.assertFalse(lease.expired(102.4))
        self.assertTrue(lease.expired(102.5))    # the database's expiry is >= 103

    def test_renewals_count_from_when_they_were_asked(self):
        lease = Lease(seconds=3, margin=0.5)
        lease.acquired(7, asked_at=100)
        self.assertTrue(lease.renewed(7, asked_at=101))
        self.assertFalse(lease.expired(103.4))
        self.assertTrue(lease.expired(103.5))

    def test_a_late_answer_for_an_ended_term_changes_nothing(self):
        lease = Lease(seconds=3, margin=0.5)
        lease.acquired(7, asked_at=100)
        self.assertEqual(lease.lost(), 7)
        self.assertFalse(lease.renewed(7, asked_at=101))
        self.assertFalse(lease.leading)
        self.assertIsNone(lease.lost())
        lease.acquired(9, asked_at=110)
        self.assertFalse(lease.renewed(7, asked_at=111))
        self.assertTrue(lease.expired(112.5))
