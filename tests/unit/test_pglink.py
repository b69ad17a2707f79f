"""A journal connection's bound (pglink.Link) and its watchdog, without a
server: the connection is a stand-in, the clock the test's."""

import contextlib

import psycopg
from twisted.trial import unittest

from buildbot_mq_ordered.router.journal import pglink
from buildbot_mq_ordered.router.journal.watchdog import Watchdog


class Connection:
    """Stands in for a psycopg connection; a call may run a test's step
    while it is 'under way' (``during``)."""

    def __init__(self):
        self.closed = False
        self.during = None

    def execute(self, sql, args=()):
        if self.during is not None:
            self.during()
        if self.closed:
            raise psycopg.OperationalError("server closed the connection unexpectedly")
        return sql

    @contextlib.contextmanager
    def transaction(self):
        yield

    def close(self):
        self.closed = True


class LinkTest(unittest.TestCase):

    def setUp(self):
        self.now = 100.0
        self.made = []
        self.link = pglink.Link('postgresql://x/y', pglink.WRITER, connect=self.connect,
                                now=lambda: self.now)

    def connect(self, url, limits):
        self.made.append(Connection())
        return self.made[-1]

    def hang(self, seconds, abort=True):
        """During the next call: the clock moves on; a hung link's socket is
        shut (the call then fails, as psycopg's does)."""
        def during():
            self.now += seconds
            if self.link.abort_if_overdue():
                self.made[-1].closed = True
        self.made[-1].during = during


class Bounds(LinkTest):

    def test_each_connection_has_the_servers_limits_and_a_bound_past_them(self):
        self.assertEqual(pglink.WRITER.bound, pglink.WRITER.statement + pglink.ANSWER_MARGIN)
        for limits in (pglink.WRITER, pglink.LOOKUPS, pglink.READER, pglink.LEASE):
            options = limits.options()
            for setting in ('statement_timeout', 'lock_timeout', 'tcp_user_timeout',
                            'idle_in_transaction_session_timeout', 'tcp_keepalives_idle'):
                self.assertIn(f'-c {setting}=', options)
        # a take-over never queues behind a statement holding the lease's row
        # for longer than a try of the lease's lasts
        self.assertLess(pglink.LEASE.lock, pglink.WRITER.statement)
        self.assertIn('-c lock_timeout=500 ', pglink.LEASE.options())

    def test_an_operation_past_its_bound_is_aborted_and_the_link_made_again(self):
        self.link.execute("SELECT 1")
        self.hang(pglink.WRITER.bound + 0.1)
        with self.assertRaises(pglink.LinkHung) as e:
            self.link.execute("SELECT 2")
        self.assertIn('no answer within 4s on the writer connection', str(e.exception))
        self.assertEqual(self.link.execute("SELECT 3"), "SELECT 3")
        self.assertEqual(len(self.made), 2)
        self.assertTrue(self.made[0].closed)

    def test_an_operation_within_its_bound_is_left_alone(self):
        self.link.execute("SELECT 1")
        self.hang(pglink.WRITER.bound - 0.1)
        self.assertEqual(self.link.execute("SELECT 2"), "SELECT 2")
        self.assertEqual(len(self.made), 1)

    def test_nothing_under_way_nothing_aborted_however_long_idle(self):
        self.link.execute("SELECT 1")
        self.now += 3600
        self.assertFalse(self.link.abort_if_overdue())
        self.link.execute("SELECT 2")
        self.assertEqual(len(self.made), 1)

    def test_a_transaction_is_one_operation_with_one_bound(self):
        with self.link.transaction():
            self.now += 3
            self.link.execute("SELECT 1")      # joins: 3 s into a 4 s bound
            self.now += 1.5
            self.assertTrue(self.link.abort_if_overdue())
        self.assertFalse(self.link.abort_if_overdue())   # once, and over

    def test_an_operation_may_have_a_longer_bound(self):
        with self.link.operation(bound=60):
            self.now += 30
            self.assertFalse(self.link.abort_if_overdue())

    def test_an_answer_that_raced_the_abort_still_gets_a_new_connection(self):
        self.link.execute("SELECT 1")

        def during():
            self.now += 10
            self.link.abort_if_overdue()       # the answer was there already
        self.made[-1].during = during
        self.assertEqual(self.link.execute("SELECT 2"), "SELECT 2")
        self.link.execute("SELECT 3")
        self.assertEqual(len(self.made), 2)


    def test_aborted_between_a_transactions_statements_the_rest_fails(self):
        with self.assertRaises(pglink.LinkHung):
            with self.link.transaction():
                self.link.execute("SELECT 1")
                self.now += 10
                self.assertTrue(self.link.abort_if_overdue())
                self.link.execute("SELECT 2")     # never on a new connection
        self.assertEqual(len(self.made), 1)
        self.link.execute("SELECT 3")
        self.assertEqual(len(self.made), 2)

class Watching(LinkTest):

    def test_the_watchdog_aborts_only_the_overdue(self):
        dog = Watchdog(now=lambda: self.now)    # not started: the test checks
        self.addCleanup(dog.stop)
        other = pglink.Link('postgresql://x/y', pglink.READER, connect=self.connect,
                            now=lambda: self.now)
        for link in (self.link, other):
            dog.watch(link)
            link.get()
        with self.link.operation(), other.operation():
            self.now += 6                      # past the writer's 4 s, not the reader's 11
            self.assertEqual(dog.check(), 1)
            self.assertEqual(dog.check(), 0)
        self.assertEqual(dog.aborted, 1)

    def test_a_late_check_aborts_nothing_and_moves_the_deadlines(self):
        # the process was stopped: the answer may be waiting in the socket
        dog = Watchdog(every=0.25, now=lambda: self.now)
        dog.watch(self.link)
        dog.check()
        with self.link.operation():
            self.now += 0.25
            self.assertEqual(dog.check(), 0)
            self.now += 8                      # a host frozen 8 s
            self.assertEqual(dog.check(), 0)
            checks = []
            while not dog.check() and len(checks) < 100:
                self.now += 0.25
                checks.append(self.now)
        # 4 s bound, moved by the 7.75 s missed: aborted 11.75 s in, not 8.5
        self.assertEqual(checks[-1], 100 + 0.25 + 8 + 3.5)
