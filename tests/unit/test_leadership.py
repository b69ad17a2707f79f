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


class GrantedNotAsked(unittest.TestCase):
    """A lease counts from when the database granted it, which the router
    cannot see: it counts from when it asked, no further than the database
    said was left, and renews at once a grant that came late."""

    def test_no_longer_than_the_database_said_was_left(self):
        lease = Lease(seconds=3, margin=0.5)
        lease.acquired(7, asked_at=100, remaining=2.0)   # the grant's answer took 1 s
        self.assertFalse(lease.expired(101.4))
        self.assertTrue(lease.expired(101.5))            # 100 + 2.0 - 0.5

    def test_never_beyond_the_lease_however_much_is_said_left(self):
        lease = Lease(seconds=3, margin=0.5)
        lease.acquired(7, asked_at=100, remaining=60)
        self.assertTrue(lease.expired(102.5))

    def test_a_grant_that_waited_is_renewed_at_once_not_lost(self):
        # asked at 100, granted after a wait, answered at 102.2: without a
        # renewal now, the next regular one (at 103.2) would come too late
        lease = Lease(seconds=3, margin=0.5, renew_every=1)
        lease.acquired(7, asked_at=100, remaining=2.9)
        self.assertFalse(lease.expired(102.2))
        self.assertTrue(lease.renew_due(102.2))
        self.assertTrue(lease.renewed(7, asked_at=102.2, remaining=3.0))
        self.assertFalse(lease.renew_due(102.25))
        self.assertFalse(lease.expired(104.6))
        self.assertTrue(lease.expired(104.7))

    def test_a_timely_grant_waits_for_the_regular_renewal(self):
        lease = Lease(seconds=3, margin=0.5, renew_every=1)
        self.assertFalse(lease.renew_due(100))           # not leading
        lease.acquired(7, asked_at=100, remaining=3.0)
        self.assertFalse(lease.renew_due(100.01))

    def test_a_slower_renewal_answer_never_shortens_the_lease(self):
        lease = Lease(seconds=3, margin=0.5)
        lease.acquired(7, asked_at=100, remaining=3)
        lease.renewed(7, asked_at=101, remaining=3)
        lease.renewed(7, asked_at=101, remaining=1)      # an answer after a wait
        self.assertFalse(lease.expired(103.4))
