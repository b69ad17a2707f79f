"""Journal on PostgreSQL: the interface's tests
(tests/support/journalcases.py) on a real server, and what only PostgreSQL
has (its schema row, several routers, the lease's fencing)."""


from buildbot_mq_ordered.router import journal as journal_module
from buildbot_mq_ordered.router import journalurl
from buildbot_mq_ordered.router.journal import lease
from buildbot_mq_ordered.router.journal import open_journal
from buildbot_mq_ordered.router.journal import postgres
from tests.support.journalcases import Basics
from tests.support.journalcases import JournalTest
from tests.support.journalcases import OnPostgreSQL
from tests.support.journalcases import Persistence
from tests.support.journalcases import Retention
from tests.support.journalcases import StreamId


class PostgreSQLOnly(OnPostgreSQL, JournalTest):

    def test_schema_is_versioned_and_a_newer_one_refused_naming_the_database(self):
        j = self.open()
        self.assertEqual(j._meta('schema_version'), str(postgres.SCHEMA_VERSION))
        j._db.execute("UPDATE meta SET value = %s WHERE name = 'schema_version'",
                      (str(postgres.SCHEMA_VERSION + 1),))
        with self.assertRaises(journal_module.JournalVersionError) as cm:
            open_journal(self.path)
        dbname = self.path.rsplit('/', 1)[1]
        self.assertIn(dbname, str(cm.exception))
        self.assertIn('newer', str(cm.exception))

    def test_the_password_is_never_in_the_name(self):
        j = self.open()
        self.assertIn(':***@', j.name)
        self.assertNotIn(':postgres@', j.name)
        self.assertEqual(j.name, journalurl.masked(self.path))

    def test_routers_starting_together_create_the_layout_once(self):
        journals = [self.open() for _ in range(3)]
        self.assertEqual(len({j.stream_id for j in journals}), 1)

    def test_a_deposed_leader_cannot_commit(self):
        # the fencing token: every writing transaction checks the lease's term
        a, b = self.open(), self.open()
        for j in (a, b):
            j.fenced = True
        db = a.new_connection()
        self.addCleanup(db.close)
        a.term = lease.acquire(db.get(), 'router-a', 60)
        self.assertIsNone(lease.acquire(db.get(), 'router-b', 60))   # a's runs
        a.append([(1, 1, ('k',), b'1')], 'p', 1)
        with self.assertRaises(lease.Deposed):     # b leads nothing yet
            b.append([(2, 2, ('k',), b'2')], 'p', 2)
        lease.release(db.get(), a.term)            # as if it ran out
        b.term = lease.acquire(db.get(), 'router-b', 60)
        self.assertEqual(b.term, a.term + 1)
        self.assertFalse(lease.renew(db.get(), a.term, 60))
        with self.assertRaises(lease.Deposed):
            a.append([(2, 2, ('k',), b'2')], 'p', 2)
        b.load()
        self.assertEqual(b.last_pos, 1)
        b.append([(2, 2, ('k',), b'2')], 'p', 2)
        self.assertTrue(lease.renew(db.get(), b.term, 60))
        self.assertEqual([e[0] for e in b.read(1, 10)], [1, 2])

    def test_a_broken_connection_is_made_again(self):
        j = self.open()
        j.append([(1, 1, ('a',), b'1')], 'p', 1)
        j._db.close()
        j._lookup_db.close()
        j.append([(2, 2, ('a',), b'2')], 'p', 2)
        self.assertEqual(j.last_seq(('a',)), 2)


# the interface's tests, on PostgreSQL
for _tests in (Basics, StreamId, Persistence, Retention):
    _name = _tests.__name__ + 'PostgreSQL'
    globals()[_name] = type(_name, (OnPostgreSQL, _tests, JournalTest), {})
del _tests, _name
