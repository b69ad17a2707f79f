"""The sequencer's procedures, driven directly (unit tests: no router; its
publish is recorded instead of sent)."""

import sqlite3

from autobahn.wamp.exception import ApplicationError
from twisted.internet import defer
from twisted.python.failure import Failure
from twisted.trial import unittest

from buildbot_mq_ordered import wire
from buildbot_mq_ordered.router import journal as journal_module
from buildbot_mq_ordered.router.journal import Journal
from tests.support.sequencer import RecordingLog
from tests.support.sequencer import make_sequencer


class Submit(unittest.TestCase):

    def ack(self, s, *args):
        """What a submit answers (at once: the writer's jobs run in place)."""
        return self.successResultOf(s.submit(*args))

    def refused(self, s, *args):
        """The ApplicationError a submit fails with."""
        return self.failureResultOf(s.submit(*args), ApplicationError).value

    def test_numbers_publishes_and_acknowledges(self):
        s = make_sequencer()
        ack = self.ack(s, 'p1', [[1, ['a'], b'1'], [2, ['a'], b'2'], [3, ['b'], b'3']])
        self.assertEqual(ack, [3, 3, 0])
        topic, entries = s.published[0]
        self.assertEqual(topic, wire.STREAM)
        self.assertEqual([list(e[:2]) for e in entries], [[1, 1], [2, 2], [3, 1]])
        # every entry names the term that committed it
        self.assertEqual({e[4] for e in entries}, {s.journal.term_id})
        self.assertTrue(all(wire.is_entry(list(e)) for e in entries))

    def test_resubmission_is_dropped(self):
        s = make_sequencer()
        s.submit('p1', [[1, ['a'], b'1'], [2, ['a'], b'2']])
        ack = self.ack(s, 'p1', [[1, ['a'], b'1'], [2, ['a'], b'2'], [3, ['a'], b'3']])
        self.assertEqual(ack, [3, 3, 2])
        self.assertEqual([e[0] for e in s.published[1][1]], [3])
        self.assertEqual(self.ack(s, 'p1', [[2, ['a'], b'2']]), [3, None, 3])
        self.assertEqual(len(s.published), 2)

    def test_malformed_submit_is_refused_and_changes_nothing(self):
        s = make_sequencer()
        for args in [(1, []), ('p', 'x'), ('p', [[1, ['a']]]), ('p', [[1, 'a', '1']]),
                     ('p', [[0, ['a'], b'1']]), ('p', [[1, [1], b'1']])]:
            with self.assertRaises(ApplicationError) as e:
                s.submit(*args)
            self.assertEqual(e.exception.error, wire.MALFORMED)
        self.assertEqual(s.published, [])
        self.assertEqual(self.ack(s, 'p', [[1, ['a'], b'1']]), [1, 1, 0])

    def test_journal_failure_acknowledges_nothing_and_loses_no_number(self):
        s = make_sequencer()
        s.submit('p', [[1, ['a'], b'1']])
        real_append = s.journal.append_batches

        def broken(*args):
            raise OSError("disk full")
        s.journal.append_batches = broken
        self.assertEqual(self.refused(s, 'p', [[2, ['a'], b'2']]).error, wire.JOURNAL_ERROR)
        self.flushLoggedErrors()
        s.journal.append_batches = real_append
        # the retried message gets the next position and number, as if
        # the failed attempt never happened
        self.assertEqual(self.ack(s, 'p', [[2, ['a'], b'2']]), [2, 2, 1])
        self.assertEqual(list(s.published[-1][1][0][:2]), [2, 2])

    def test_journal_failures_are_one_error_per_run(self):
        # issue 10: a full disk made the sequencer log a line per refused
        # submit; now the first of a run, every 100th, and the recovery
        said = []
        s = make_sequencer(log=RecordingLog(said))
        real_append = s.journal.append_batches

        def full(*args):
            raise sqlite3.OperationalError("database or disk is full")
        s.journal.append_batches = full
        for _ in range(150):
            self.assertIn('database or disk is full',
                          self.refused(s, 'p', [[1, ['a'], b'1']]).args[0])
        s.journal.append_batches = real_append
        s.clock.advance(1)      # the journal is read again, at its pace
        self.assertEqual(self.ack(s, 'p', [[1, ['a'], b'1']]), [1, 1, 0])
        self.assertEqual([(level, kw.get('n')) for level, _, kw in said],
                         [('error', 1), ('error', 100), ('info', 150)])
        self.assertIn('database or disk is full', str(said[0][2]['err']))

    def test_any_shape_of_call_is_malformed_not_a_runtime_error(self):
        # issue 10: wrong arity or numbers >= 2**63 answered
        # wamp.error.runtime_error with a traceback
        s = make_sequencer()
        calls = [
            (s.submit, (), {}), (s.submit, ('p',), {}), (s.submit, ('p', [], 'x'), {}),
            (s.submit, (), {'producer': 'p', 'messages': []}),
            (s.submit, ('x' * (wire.MAX_PRODUCER_ID + 1), [[1, ['a'], b'1']]), {}),
            (s.submit, ('', [[1, ['a'], b'1']]), {}),
            (s.submit, ('p', [[1, ['k' * (wire.MAX_KEY_BYTES + 1)], b'1']]), {}),
            (s.submit, ('p', [[1, ['é' * (wire.MAX_KEY_BYTES // 2 + 1)], b'1']]), {}),
            (s.replay, (), {}), (s.replay, (1, 2, 3), {}), (s.replay, (2 ** 63,), {}),
            (s.replay, (1, 2 ** 64), {}), (s.replay, (-1, 5), {}), (s.replay, (True,), {}),
            (s.replay, (1.0, 5), {}), (s.replay, (), {'from_pos': 1}),
            (s.info, (1,), {}), (s.info, (), {'protocol': 2}),
            (s.info, (), {'protocol': [2]}), (s.info, (), {'protocol': ['2', '0']}),
        ]
        for f, args, kwargs in calls:
            with self.assertRaises(ApplicationError, msg=(f.__name__, args, kwargs)) as e:
                f(*args, **kwargs)
            self.assertEqual(e.exception.error, wire.MALFORMED)
        self.assertEqual(s.published, [])
        # the largest key and producer id that are allowed pass
        key = ['k' * (wire.MAX_KEY_BYTES - 1), 'x']
        self.assertEqual(self.ack(s, 'p' * wire.MAX_PRODUCER_ID, [[1, key, b'1']]),
                         [1, 1, 0])
        self.assertEqual(self.successResultOf(s.replay(1)),
                         [s.journal.stream_id, 1, 1, [[1, 1, key, b'1', s.journal.term_id]]])

    def test_replay_answer_is_bounded_by_bytes(self):
        # issue 10: 5,000 entries of 4 KiB made an answer over the router's
        # 16 MiB frame limit; the master's replay failed for good
        s = make_sequencer()
        mib = b'x' * (1024 * 1024)
        s.submit('p', [[i, ['k'], mib] for i in range(1, 11)] +
                 [[11, ['k'], b'x' * (6 * 1024 * 1024)]])
        _, first, last, entries = self.successResultOf(s.replay(1, 5000))
        self.assertEqual((first, last), (1, 11))
        self.assertEqual([e[0] for e in entries], [1, 2, 3])
        self.assertLessEqual(sum(len(e[3]) for e in entries), wire.MAX_REPLAY_BYTES)
        # the master asks again from where the answer ended; a message larger
        # than the budget comes alone
        self.assertEqual([e[0] for e in self.successResultOf(s.replay(4, 5000))[3]], [4, 5, 6])
        self.assertEqual([e[0] for e in self.successResultOf(s.replay(11, 5000))[3]], [11])

    def test_a_failed_prune_holds_no_batch_back(self):
        # issue 10: a prune that raised after the commit made the batch look
        # failed: committed, never published, its resubmission dropped
        s = make_sequencer(log=RecordingLog(said := []))
        s.journal._appends_since_prune = journal_module.PRUNE_EVERY - 1

        def broken():
            raise sqlite3.OperationalError("disk I/O error")
        s.journal.prune = broken
        self.assertEqual(self.ack(s, 'p', [[1, ['a'], b'1']]), [1, 1, 0])
        self.assertEqual([e[0] for e in s.published[-1][1]], [1])
        self.assertEqual([level for level, _, _ in said], ['warn'])

    def test_prune_forgets_unused_producers(self):
        clock = [1000.0]
        s = make_sequencer(Journal(':memory:', retention_seconds=100,
                                   clock=lambda: clock[0]))
        s.submit('old', [[1, ['a'], b'1']])
        clock[0] += 200
        for i in range(1, journal_module.PRUNE_EVERY):
            s.submit('new', [[i, ['a'], b'1']])
        self.assertEqual(set(s.sequencing.numbering.producer_marks), {'new'})

    def test_replay(self):
        s = make_sequencer()
        s.submit('p', [[i, ['k', str(i)], str(i).encode()] for i in range(1, 11)])
        stream_id, first, last, entries = self.successResultOf(s.replay(4, 3))
        self.assertEqual(stream_id, s.journal.stream_id)
        self.assertEqual((first, last), (1, 10))
        self.assertEqual([e[0] for e in entries], [4, 5, 6])
        self.assertEqual(entries[0][2], ['k', '4'])
        self.assertEqual({e[4] for e in entries}, {s.journal.term_id})
        self.assertEqual(self.successResultOf(s.replay(0, 0)), [s.journal.stream_id, 1, 10, []])
        term_id = s.journal.term_id
        self.assertEqual(s.info(**wire.handshake()), {
                                    'stream_id': s.journal.stream_id, 'head': 10,
                                    'first_pos': 1, 'term': 1, 'journal_rows': 10,
                                    'term_id': term_id, 'terms': [[term_id, 1]]})
        self.assertEqual(len(self.successResultOf(s.replay(1, 10 ** 6))[3]), 10)
        with self.assertRaises(ApplicationError):
            s.replay('x', 1)

    def test_restart_continues_from_the_journal(self):
        path = self.mktemp()
        s = make_sequencer(Journal(path))
        s.submit('p', [[1, ['a'], b'1'], [2, ['b'], b'2']])
        s.journal.close()
        s2 = make_sequencer(Journal(path))
        self.assertEqual(self.ack(s2, 'p', [[2, ['b'], b'2'], [3, ['a'], b'3']]), [3, 3, 2])
        self.assertEqual(list(s2.published[0][1][0][:2]), [3, 2])
        s2.journal.close()


class Terms(unittest.TestCase):
    """Issue 22: every entry names the term that committed it; info tells the
    journal's recent terms; a submit's answer tells the producer's mark
    before it."""

    def reopened(self, path):
        s = make_sequencer(Journal(path))
        self.addCleanup(s.journal.close)
        return s

    def test_a_reopened_journal_continues_under_a_new_term(self):
        path = self.mktemp()
        s = self.reopened(path)
        s.submit('p', [[1, ['a'], b'1'], [2, ['a'], b'2']])
        first = s.journal.term_id
        s.journal.close()
        s = self.reopened(path)
        second = s.journal.term_id
        self.assertNotEqual(second, first)
        self.assertEqual(s.info(**wire.handshake())['terms'], [[first, 1], [second, 3]])
        self.assertEqual(s.info(**wire.handshake())['term_id'], second)
        s.submit('p', [[3, ['a'], b'3']])
        self.assertEqual([e[4] for e in s.published[0][1]], [second])
        # what a replay reads (in place here: a file's replays run in a thread)
        entries = s.journal.read(1, 10)
        self.assertEqual([(e[0], e[4]) for e in entries], [(1, first), (2, first), (3, second)])

    def test_a_journal_that_lost_its_tail_under_the_lease_is_a_new_term_and_one_error(self):
        # PostgreSQL failed over to a replica behind; the lease's row came
        # over with it, so this router still leads: its next load (after the
        # refused commit) finds the head lower, and numbers on under a new term
        s = make_sequencer(log=RecordingLog(said := []))
        s.journal.term = 7      # a lease's, as PostgreSQL's Leadership sets it
        first = s.journal.term_id
        self.assertEqual(self.successResultOf(s.submit('p', [[1, ['a'], b'1'], [2, ['a'], b'2'],
                                                             [3, ['a'], b'3']])), [3, 3, 0])
        s.journal._db.execute("DELETE FROM entries WHERE pos > 1")
        s.journal._db.execute("UPDATE meta SET value = 1 WHERE name = 'last_pos'")
        s.journal._db.execute("UPDATE producers SET mark = 1")
        self.successResultOf(s.sequencing.reload())
        [(level, text, kw)] = said
        self.assertEqual(level, 'error')
        self.assertEqual(text.format(**kw).split(': masters')[0],
                         "sequencer: the journal :memory: ends at position 1, before position 3 "
                         "this router published: positions 2..3 are lost from it (did its "
                         "database fail over to a replica behind?); numbering on from 2 under "
                         f"a new term (id {s.journal.term_id})")
        second = s.journal.term_id
        self.assertNotEqual(second, first)
        self.assertEqual(s.info(**wire.handshake())['terms'], [[first, 1], [second, 2]])
        self.assertEqual(s.info(**wire.handshake())['term_id'], second)
        # p learns the journal holds its seqs up to 1 only
        self.assertEqual(self.successResultOf(s.submit('p', [[4, ['a'], b'4']])), [4, 2, 1])
        self.assertEqual(s.published[-1][1][0][0::4], (2, second))

    def test_info_tells_the_most_recent_terms_only(self):
        path = self.mktemp()
        ids = []
        for _ in range(wire.MAX_TERMS + 3):
            s = self.reopened(path)
            ids.append(s.journal.term_id)
            s.journal.close()
        s = self.reopened(path)
        ids.append(s.journal.term_id)
        self.assertEqual(s.info(**wire.handshake())['terms'], [[t, 1] for t in ids[-wire.MAX_TERMS:]])
        self.assertEqual(len(set(ids)), len(ids))

    def test_the_answer_tells_the_mark_the_journal_had_before_the_batch(self):
        # a journal restored from a backup lost what p was acknowledged
        # since: the next answer tells p where the journal stands
        path, backup = self.mktemp(), self.mktemp()
        s = self.reopened(path)
        self.assertEqual(self.successResultOf(s.submit('p', [[1, ['a'], b'1']])), [1, 1, 0])
        copy(path, backup)
        self.assertEqual(self.successResultOf(s.submit('p', [[2, ['a'], b'2'], [3, ['a'], b'3']])),
                         [3, 3, 1])
        s.journal.close()
        copy(backup, path)
        s = self.reopened(path)
        self.assertEqual(self.successResultOf(s.submit('p', [[4, ['a'], b'4']])), [4, 2, 1])
        self.assertEqual(len(s.info(**wire.handshake())['terms']), 2)     # the backup's, and this one


def copy(source, target):
    """A SQLite file copied as SQLite does it (a backup, or its restore)."""
    src, dst = sqlite3.connect(source), sqlite3.connect(target)
    try:
        src.backup(dst)
    finally:
        src.close()
        dst.close()


class Serving(unittest.TestCase):
    """The procedures, registered while the leadership says so."""

    def test_procedures_are_registered_and_dropped(self):
        s = make_sequencer()
        registered = []

        class Registration:
            def __init__(self, uri):
                self.uri = uri

            def unregister(self):
                registered.remove(self.uri)
                return defer.succeed(None)

        def register(procedure, uri, options=None):
            registered.append(uri)
            return defer.succeed(Registration(uri))
        s.register = register
        self.assertTrue(self.successResultOf(s.serve(lambda: True)))
        self.assertEqual(registered, [wire.SUBMIT, wire.REPLAY, wire.INFO])
        s.unserve()
        self.assertEqual(registered, [])
        # the lead lost while registering: what registers after goes at once,
        # what registered before with unserve (step_down calls it)
        leads = iter([True, False])
        self.assertFalse(self.successResultOf(s.serve(lambda: next(leads))))
        self.assertEqual(registered, [wire.SUBMIT])
        s.unserve()
        self.assertEqual(registered, [])


class Refusals(unittest.TestCase):
    """Issue 21: with the journal's disk full every refused submit was one
    more line in the router's log (autobahn's onUserError); the sequencing
    says it once per run of failures."""

    def test_a_refusal_is_no_log_line_a_bug_is(self):
        said = []
        s = make_sequencer(log=RecordingLog(said))
        s.onUserError(Failure(ApplicationError(wire.JOURNAL_ERROR, "journal write failed")),
                      "journal write failed")
        self.assertEqual(said, [])
        try:
            raise KeyError("a bug")
        except KeyError:
            s.onUserError(Failure(), "a bug")
        self.assertEqual([level for level, _, _ in said], ['error'])


class Handshake(unittest.TestCase):

    def test_info_without_a_version_is_refused_and_said_once(self):
        s = make_sequencer(log=RecordingLog(said := []))
        for _ in range(3):
            with self.assertRaises(ApplicationError) as e:
                s.info()
            self.assertEqual(e.exception.error, wire.PROTOCOL_MISMATCH)
        self.assertEqual([(level, kw['line'][:40]) for level, _, kw in said],
                         [('warn', "sequencer: refused a master of protocol ")])
        self.assertEqual(s.info(**wire.handshake())['head'], 0)
