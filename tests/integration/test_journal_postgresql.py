"""Journal on PostgreSQL: the interface's tests
(tests/support/journalcases.py) on a real server, and what only PostgreSQL
has (its schema row, several routers, the lease's fencing, a hung link)."""

import contextlib
import functools
import os
import signal
import socket
import subprocess
import sys
import threading
import time

import psycopg

from twisted.internet import defer
from twisted.internet import threads

from buildbot_mq_ordered.load.processes import free_port
from buildbot_mq_ordered.router import journal as journal_module
from buildbot_mq_ordered.router import journalurl
from buildbot_mq_ordered.router.journal import lease
from buildbot_mq_ordered.router.journal import open_journal
from buildbot_mq_ordered.router.journal import pglink
from buildbot_mq_ordered.router.journal import pgwrites
from buildbot_mq_ordered.router.journal import postgres
from buildbot_mq_ordered.router.journal.watchdog import CHECK_EVERY
from tests.support.journalcases import Basics
from tests.support.journalcases import JournalTest
from tests.support.journalcases import OnPostgreSQL
from tests.support.journalcases import Persistence
from tests.support.journalcases import Retention
from tests.support.ha import poll
from tests.support.journalcases import StreamId
from tests.support.pgutil import journal_rows
from tests.support.termcases import OldLayoutPostgreSQL
from tests.support.termcases import Terms
from tests.support.util import with_timeout


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
        a.term = lease.acquire(db.get(), 'router-a', 60).term
        self.assertIsNone(lease.acquire(db.get(), 'router-b', 60))   # a's runs
        a.append([(1, 1, ('k',), b'1', a.term_id)], 'p', 1)
        with self.assertRaises(lease.Deposed):     # b leads nothing yet
            b.append([(2, 2, ('k',), b'2', b.term_id)], 'p', 2)
        lease.release(db.get(), a.term)            # as if it ran out
        b.term = lease.acquire(db.get(), 'router-b', 60).term
        self.assertEqual(b.term, a.term + 1)
        self.assertIsNone(lease.renew(db.get(), a.term, 60))
        with self.assertRaises(lease.Deposed):
            a.append([(2, 2, ('k',), b'2', a.term_id)], 'p', 2)
        b.load()
        self.assertEqual(b.last_pos, 1)
        b.append([(2, 2, ('k',), b'2', b.term_id)], 'p', 2)
        self.assertGreater(lease.renew(db.get(), b.term, 60), 59)
        self.assertEqual([e[0] for e in b.read(1, 10)], [1, 2])

    def test_a_failed_append_leaves_nothing_for_the_next(self):
        # its batch was staged, then refused: the next append writes its own only
        j = self.open()
        j.append([(1, 1, ('a',), b'1', j.term_id)], 'p', 1)
        with self.assertRaises(psycopg.errors.UniqueViolation):
            j.append_batches([([(2, 1, ('b',), b'x', j.term_id), (2, 1, ('c',), b'y', j.term_id)],
                               'q', 9)])
        with self.assertRaises(pgwrites.JournalMoved):     # not after the head
            j.append_batches([([(1, 1, ('b',), b'x', j.term_id), (2, 1, ('c',), b'y', j.term_id)],
                               'q', 9)])
        j.append([(2, 2, ('a',), b'2', j.term_id)], 'p', 2)
        self.assertEqual(j.read(1, 10), [[1, 1, ['a'], b'1', j.term_id],
                                         [2, 2, ['a'], b'2', j.term_id]])
        self.assertEqual((j.producer_marks(), j.last_seq(('c',))), ({'p': 2}, 0))

    def test_a_broken_connection_is_made_again(self):
        j = self.open()
        j.append([(1, 1, ('a',), b'1', j.term_id)], 'p', 1)
        j._db.close()
        j._lookup_db.close()
        j.append([(2, 2, ('a',), b'2', j.term_id)], 'p', 2)
        self.assertEqual(j.last_seq(('a',)), 2)


# the interface's tests, on PostgreSQL
for _tests in (Basics, StreamId, Persistence, Retention):
    _name = _tests.__name__ + 'PostgreSQL'
    globals()[_name] = type(_name, (OnPostgreSQL, _tests, JournalTest), {})
del _tests, _name


class TermsPostgreSQL(OnPostgreSQL, OldLayoutPostgreSQL, Terms, JournalTest):
    """The journal's terms (tests/support/termcases.py), on PostgreSQL."""

    def test_an_append_to_a_journal_that_is_not_where_it_was_left_writes_nothing(self):
        # a leader that kept its lease across a failover to a replica behind
        # would leave a hole, or number over lost positions under its term
        j = self.open()
        j.term = 1
        first = j.term_id
        j.append([(p, p, ('k',), b'x', first) for p in (1, 2, 3)], 'p', 3)
        self.lose_tail(j, 1)
        with self.assertRaises(pgwrites.JournalMoved) as cm:
            j.append([(4, 4, ('k',), b'x', first)], 'p', 4)
        self.assertIn('its head is 1, not 3', str(cm.exception))
        self.assertEqual([e[0] for e in j.read(1, 10)], [1])
        j.load()
        j.append([(2, 2, ('k',), b'y', j.term_id)], 'p', 2)
        # its term's row gone (it began after what the replica had)
        j._x(j._db, "DELETE FROM terms WHERE term_id = ?", (j.term_id,))
        with self.assertRaises(pgwrites.JournalMoved) as cm:
            j.append([(3, 3, ('k',), b'z', j.term_id)], 'p', 3)
        self.assertIn(f'its term {j.term_id} is gone', str(cm.exception))
        self.assertEqual([e[0] for e in j.read(1, 10)], [1, 2])

    def test_a_writer_of_0_4_cannot_write_an_entry_of_no_term(self):
        # the conversion's default is dropped: a router of 0.4 still running
        # fails its writes rather than leave an entry no master can place
        self.write_old_layout(positions=[1], last_pos=1)
        self.open()
        with self.assertRaises(psycopg.errors.NotNullViolation):
            journal_rows(self.path, "INSERT INTO entries (pos, seq, key, data, ts) "
                                    "VALUES (2, 2, '[\"k\"]', '\\xc0', 1.0) RETURNING pos")


class HangingProxy:
    """A TCP proxy to PostgreSQL on loopback that can hang: from ``hang()``
    on it forwards nothing either way, on the connections it has and on
    those it accepts (its kernel still acknowledges what arrives, as a
    stalled middlebox's does), until ``resume()`` drops them all."""

    def __init__(self, target_port):
        self.target = ('127.0.0.1', target_port)
        self.hung = threading.Event()
        self._lock = threading.Lock()
        self._sockets = []
        self._listener = socket.create_server(('127.0.0.1', 0))
        self.port = self._listener.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def url(self, url):
        """url, through this proxy."""
        host_port = url.split('@', 1)[1].split('/', 1)[0]
        return url.replace(f'@{host_port}/', f'@127.0.0.1:{self.port}/')

    def _accept(self):
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            upstream = None
            if not self.hung.is_set():
                upstream = socket.create_connection(self.target, timeout=5)
                upstream.settimeout(None)
            with self._lock:
                self._sockets += [s for s in (client, upstream) if s is not None]
            self._start(client, upstream)
            if upstream is not None:
                self._start(upstream, client)

    def _start(self, src, dst):
        threading.Thread(target=self._pump, args=(src, dst), daemon=True).start()

    def _pump(self, src, dst):
        with contextlib.suppress(OSError):
            for data in iter(functools.partial(src.recv, 65536), b''):
                if dst is not None and not self.hung.is_set():
                    dst.sendall(data)

    def hang(self):
        self.hung.set()

    def resume(self):
        with self._lock:
            dropped, self._sockets = self._sockets, []
        self.hung.clear()
        for s in dropped:
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)
            s.close()

    def close(self):
        self._listener.close()
        self.resume()


class MultiHost(OnPostgreSQL, JournalTest):
    """libpq's multi-host URL (issue 22): each connection, a broken one's
    replacement too, goes to the host that answers and takes writes."""

    def test_a_host_list_connects_to_the_host_that_takes_writes_and_again_after_a_break(self):
        dead = free_port()     # nothing listens there: a primary that is gone
        user_at, rest = self.path.split('://', 1)[1].split('@', 1)
        database = rest.split('/', 1)[1]
        url = (f"postgresql://{user_at}@127.0.0.1:{dead},{rest.split('/')[0]}/{database}"
               "?target_session_attrs=read-write&connect_timeout=2")
        j = self.open(url)
        self.assertIn(f':***@127.0.0.1:{dead},', j.name)
        self.assertNotIn(':postgres@', j.name)
        j.append([(1, 1, ('a',), b'1', j.term_id)], 'p', 1)
        # the server ends the writer's session (as a failover does): the
        # append under way fails, the next one is on a new connection
        ended = journal_rows(self.path, "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                                        "WHERE datname = current_database() "
                                        "AND pid <> pg_backend_pid()")
        self.assertTrue(ended)
        with self.assertRaises(psycopg.OperationalError):
            j.append([(2, 2, ('a',), b'2', j.term_id)], 'p', 2)
        j.append([(2, 2, ('a',), b'2', j.term_id)], 'p', 2)
        self.assertEqual([e[0] for e in j.read(1, 10)], [1, 2])


class HungLink(OnPostgreSQL, JournalTest):
    """The link to the server hangs (a proxy that accepts and forwards
    nothing): every call on every connection fails within its bound, and
    once the link is back the journal works again on new connections."""

    timeout = 30

    @defer.inlineCallbacks
    def test_every_call_fails_within_its_bound_and_works_again_after(self):
        proxy = HangingProxy(int(self.path.split('@', 1)[1].split('/')[0].rsplit(':', 1)[1]))
        self.addCleanup(proxy.close)
        j = self.open(proxy.url(self.path))
        j.fenced = True
        keeper = j.new_connection()
        self.addCleanup(keeper.close)
        j.term = lease.acquire(keeper, 'router-a', 60).term
        j.append([(1, 1, ('a',), b'1', j.term_id)], 'p', 1)
        self.assertEqual(j.last_seq(('a',)), 1)
        proxy.hang()
        calls = {'writer': (pglink.WRITER, j.append, [(2, 2, ('a',), b'2', j.term_id)], 'p', 2),
                 'lookups': (pglink.LOOKUPS, j.last_seq, ('a',)),
                 'lease': (pglink.LEASE, lease.renew, keeper, j.term, 60)}

        def timed(f, *args):
            began = time.monotonic()
            try:
                f(*args)
            except pglink.LinkHung as e:
                return time.monotonic() - began, str(e)
            return time.monotonic() - began, 'answered'
        took = yield defer.gatherResults([threads.deferToThread(timed, *c[1:])
                                          for c in calls.values()])
        for (name, (limits, *_)), (seconds, said) in zip(calls.items(), took):
            print(f"\n{name}: failed after {seconds:.2f} s ({said})")
            self.assertIn(f'on the {name} connection', said)
            self.assertGreaterEqual(seconds, limits.bound)
            self.assertLess(seconds, limits.bound + 2 * CHECK_EVERY + 0.5)
        proxy.resume()
        self.assertIsNotNone(lease.renew(keeper, j.term, 60))
        j.append([(2, 2, ('a',), b'2', j.term_id)], 'p', 2)
        self.assertEqual(j.last_seq(('a',)), 2)
        self.assertEqual([e[0] for e in j.read(1, 10)], [1, 2])


# a leader's journal writing flat out, in a process of its own
APPENDER = """
import sys
from buildbot_mq_ordered.router.journal import lease, open_journal
j = open_journal(sys.argv[1])
j.fenced = True
conn = j.new_connection()
j.take_lease(lease.acquire(conn.get(), 'stopped', 60).term)
j.load()     # begins the lease's term
pos = 0
while True:
    batch = [(pos + i, pos + i, ('k', str(i % 7)), b'x' * 200, j.term_id) for i in range(1, 101)]
    try:
        j.append_batches([(batch, 'p', pos + 100)])
    except lease.Deposed:
        print('deposed', flush=True)
        break
    pos += 100
    if pos == 2000:
        print(j.term, flush=True)
"""


class StoppedWriter(OnPostgreSQL, JournalTest):
    """A leader stopped (SIGSTOP) in the middle of writing holds no lock on
    the lease's row: stopped at STOPS moments, the row is free each time,
    and another router takes the lease at once."""

    timeout = 60
    STOPS = 5

    @defer.inlineCallbacks
    def test_a_stopped_writer_holds_no_lock_on_the_lease(self):
        self.open()     # the layout
        proc = subprocess.Popen([sys.executable, '-c', APPENDER, self.path],
                                stdout=subprocess.PIPE, text=True)
        self.addCleanup(proc.wait, 10)
        self.addCleanup(proc.kill)
        self.addCleanup(os.kill, proc.pid, signal.SIGCONT)
        line = yield with_timeout(threads.deferToThread(proc.stdout.readline), 15,
                                  "the appender's 20th batch")
        term = int(line)
        link = pglink.Link(self.path, pglink.LEASE)
        self.addCleanup(link.close)
        took = []
        for _ in range(self.STOPS):
            # a moment of the appender's own: once it wrote more
            head = self.head()
            yield poll(lambda: threads.deferToThread(self.head).addCallback(
                lambda now: now >= head + 300), 10, "the appender writing on")
            os.kill(proc.pid, signal.SIGSTOP)
            took.append(self.row_free_after(link))
            os.kill(proc.pid, signal.SIGCONT)
        os.kill(proc.pid, signal.SIGSTOP)
        lease.release(link, term)
        self.assertEqual(lease.acquire(link, 'other', 60).term, term + 1)
        print(f"\nlease row free {max(took) * 1000:.0f} ms at worst after the writer stopped")
        self.assertLess(max(took), pglink.LEASE.lock)
        os.kill(proc.pid, signal.SIGCONT)
        line = yield with_timeout(threads.deferToThread(proc.stdout.readline), 15,
                                  "the woken appender's next commit")
        self.assertEqual(line.strip(), 'deposed')
        rows = journal_rows(self.path, "SELECT pos FROM entries ORDER BY pos")
        self.assertEqual([r[0] for r in rows], list(range(1, len(rows) + 1)))

    def head(self):
        return int(journal_rows(self.path, "SELECT value FROM meta WHERE name = 'last_pos'")[0][0])

    def row_free_after(self, link):
        """Seconds until the lease's row can be locked (a take-over's lock)."""
        stopped = time.monotonic()
        while True:
            try:
                link.execute("SELECT FROM lease WHERE id = 1 FOR NO KEY UPDATE")
                return time.monotonic() - stopped
            except psycopg.errors.LockNotAvailable:     # lock_timeout: 0.5 s
                self.assertLess(time.monotonic() - stopped, 5, "the row stays locked")
