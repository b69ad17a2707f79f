"""The journal writer's state machine, driven by hand: no thread, no
reactor. Each job runs where the test says, as the writer would run it."""

from twisted.python.failure import Failure
from twisted.trial import unittest

from buildbot_mq_ordered.router import journal as journal_module
from buildbot_mq_ordered.router.groupcommit import GroupCommit
from buildbot_mq_ordered.router.journal import Journal


class Owner:
    """Records what the state machine tells its owner."""

    def __init__(self):
        self.told = []

    def committed(self, entries):
        self.told.append(('committed', [e[0] for e in entries]))

    def reloaded(self, marks):
        self.told.append(('reloaded', marks))

    def pruned(self, marks):
        self.told.append(('pruned', marks))

    def prune_failed(self, failure):
        self.told.append(('prune_failed', str(failure.value)))


class GroupCommitTest(unittest.TestCase):

    def setUp(self):
        self.journal = Journal(':memory:')
        self.addCleanup(self.journal.close)
        self.owner = Owner()
        self.now = 0.0
        self.commits = GroupCommit(self.journal, self.owner, clock=lambda: self.now)

    def batch(self, pos, key='k', producer='p', mark=None):
        """One batch of one entry numbered under the journal's term:
        (entries, producer, mark)."""
        entries = [(pos, pos, (key,), b'x', self.journal.term_id)]
        return entries, producer, pos if mark is None else mark

    def next_job(self, kind):
        job = self.commits.next_job()
        self.assertEqual(job and job.kind, kind)
        return job

    def run_job(self, job, error=None):
        """The job's work, or error raised in its place; then its outcome, as
        the writer hands it over."""
        try:
            if error is not None:
                raise error
            result = job.work(*job.args)
        except Exception:
            job.failed(Failure())
        else:
            job.done(result)
        self.commits.job_ended()

    def answers(self, ds):
        out = []
        for d in ds:
            d.addCallbacks(lambda _: out.append('ok'), lambda f: out.append(str(f.value)))
        return out


class Groups(GroupCommitTest):

    def test_batches_written_during_a_commit_are_the_next_group(self):
        first = self.commits.write(*self.batch(1))
        job = self.next_job('commit')
        later = [self.commits.write(*self.batch(pos)) for pos in (2, 3)]
        self.assertIsNone(self.commits.next_job())     # one job at a time
        answered = self.answers([first] + later)
        self.run_job(job)
        self.assertEqual(answered, ['ok'])
        self.run_job(self.next_job('commit'))
        self.assertEqual(answered, ['ok', 'ok', 'ok'])
        self.assertEqual(self.owner.told, [('committed', [1]), ('committed', [2, 3])])
        self.assertEqual([e[0] for e in self.journal.read(1, 10)], [1, 2, 3])
        self.assertIsNone(self.commits.next_job())
        self.assertTrue(self.commits.idle)

    def test_a_resubmission_waits_for_the_batches_before_it(self):
        self.assertEqual(self.answers([self.commits.write([], 'p', 0)]), ['ok'])   # idle
        self.commits.write(*self.batch(1))
        job = self.next_job('commit')
        again = self.answers([self.commits.write([], 'p', 1)])
        self.run_job(job)
        self.assertEqual(again, [])
        self.run_job(self.next_job('commit'))
        self.assertEqual(again, ['ok'])

    def test_what_is_not_yet_committed_is_found_in_the_group_and_the_queue(self):
        self.commits.write(*self.batch(1, key='a', producer='p'))
        self.next_job('commit')
        self.commits.write(*self.batch(2, key='a', producer='q'))
        self.assertEqual(self.commits.batches.pending_seq(('a',)), 2)
        self.assertIsNone(self.commits.batches.pending_seq(('b',)))
        self.assertEqual(self.commits.batches.producers(), {'p', 'q'})


class Failures(GroupCommitTest):

    def test_a_failed_commit_fails_everything_numbered_after_it_until_reloaded(self):
        first = self.commits.write(*self.batch(1))
        job = self.next_job('commit')
        queued = self.commits.write(*self.batch(2))
        answered = self.answers([first, queued])
        self.run_job(job, OSError("disk I/O error"))
        self.assertEqual(answered, ['disk I/O error', 'disk I/O error'])
        # refused until the journal was read again: a load comes next
        self.assertEqual(self.answers([self.commits.write(*self.batch(1))]), ['disk I/O error'])
        self.run_job(self.next_job('load'))
        self.assertEqual(self.owner.told, [('reloaded', {})])
        self.assertEqual(self.answers([self.commits.write(*self.batch(1))]), [])
        self.run_job(self.next_job('commit'))
        self.assertEqual(self.journal.last_pos, 1)

    def test_a_refused_batch_asks_for_one_more_load_when_the_pace_allows(self):
        answered = self.answers([self.commits.write(*self.batch(1))])
        self.run_job(self.next_job('commit'), OSError("server away"))
        self.run_job(self.next_job('load'), OSError("server away"))
        self.assertIsNone(self.commits.next_job())     # not hammered
        answered += self.answers([self.commits.write(*self.batch(1))])
        self.assertEqual(answered, ['server away', 'server away'])
        self.assertIsNone(self.commits.next_job())     # the second load of a run waits
        self.assertTrue(self.commits.load_waits)
        self.now += 0.1
        self.next_job('load')

    def test_fail_fails_the_queue_and_the_group_under_way_commits_on_its_own(self):
        first = self.commits.write(*self.batch(1))
        job = self.next_job('commit')
        queued = self.commits.write(*self.batch(2))
        answered = self.answers([first, queued])
        self.commits.fail(Failure(RuntimeError("deposed")))
        self.assertEqual(answered, ['deposed'])
        self.run_job(job)
        self.assertEqual(answered, ['deposed', 'ok'])
        self.run_job(self.next_job('load'))
        self.assertIsNone(self.commits.failure)

    def test_reload_waits_for_the_job_under_way(self):
        self.commits.write(*self.batch(1))
        job = self.next_job('commit')
        reloaded = self.answers([self.commits.reload()])
        self.assertIsNone(self.commits.next_job())
        self.run_job(job)
        self.assertEqual(reloaded, [])
        self.run_job(self.next_job('load'))
        self.assertEqual(reloaded, ['ok'])
        self.assertEqual(self.owner.told[-1], ('reloaded', {'p': 1}))

    def test_a_failed_load_fails_its_waiters_and_still_refuses(self):
        self.commits.fail(Failure(RuntimeError("deposed")))
        reloaded = self.answers([self.commits.reload()])
        self.run_job(self.next_job('load'), OSError("server away"))
        self.assertEqual(reloaded, ['server away'])
        self.assertEqual(self.answers([self.commits.write(*self.batch(1))]), ['deposed'])


class Prunes(GroupCommitTest):

    def test_a_prune_due_comes_after_the_commit_and_a_failed_one_holds_nothing(self):
        self.journal._appends_since_prune = journal_module.PRUNE_EVERY - 1
        first = self.answers([self.commits.write(*self.batch(1))])
        self.run_job(self.next_job('commit'))
        self.assertEqual(first, ['ok'])
        job = self.next_job('prune')
        second = self.answers([self.commits.write(*self.batch(2))])
        self.run_job(job, OSError("disk I/O error"))
        self.assertEqual(self.owner.told[-1], ('prune_failed', 'disk I/O error'))
        self.run_job(self.next_job('commit'))     # one prune per due, even failed
        self.assertEqual(second, ['ok'])

    def test_a_prune_tells_the_owner_the_marks_kept(self):
        self.journal._appends_since_prune = journal_module.PRUNE_EVERY - 1
        self.commits.write(*self.batch(1))
        self.run_job(self.next_job('commit'))
        self.run_job(self.next_job('prune'))
        self.assertEqual(self.owner.told[-1], ('pruned', {'p': 1}))


class Reloads(GroupCommitTest):
    """Issue 21: reloads that overlapped replaced the numbering under
    batches numbered from it (a position numbered twice)."""

    def test_a_reload_is_answered_only_by_a_load_started_after_it(self):
        self.commits.fail(Failure(RuntimeError("deposed")))
        first = self.next_job('load')                  # the step-down's
        reloaded = self.answers([self.commits.reload()])   # the new lead's
        self.run_job(first)
        self.assertEqual(reloaded, [])
        # batches are refused until the lead's own load ended
        self.assertEqual(self.answers([self.commits.write(*self.batch(1))]), ['deposed'])
        self.run_job(self.next_job('load'))
        self.assertEqual(reloaded, ['ok'])
        self.assertEqual([t for t, _ in self.owner.told], ['reloaded', 'reloaded'])
        self.assertEqual(self.answers([self.commits.write(*self.batch(1))]), [])

    def test_batches_queued_before_a_reload_are_committed_first_later_ones_refused(self):
        queued = self.answers([self.commits.write(*self.batch(1))])
        reloaded = self.answers([self.commits.reload()])
        refused = self.answers([self.commits.write(*self.batch(2))])
        self.assertEqual(refused, ['the sequencer is reading its journal again'])
        self.run_job(self.next_job('commit'))
        self.assertEqual(queued, ['ok'])
        self.run_job(self.next_job('load'))
        self.assertEqual(reloaded, ['ok'])
        self.assertEqual(self.owner.told, [('committed', [1]), ('reloaded', {'p': 1})])

    def test_a_batch_refused_during_a_load_asks_for_no_other(self):
        self.answers([self.commits.write(*self.batch(1))])
        self.run_job(self.next_job('commit'), OSError("disk I/O error"))
        load = self.next_job('load')
        self.assertEqual(self.answers([self.commits.write(*self.batch(1))]), ['disk I/O error'])
        self.run_job(load)
        self.assertIsNone(self.commits.next_job())
        self.assertIsNone(self.commits.failure)
        self.assertFalse(self.commits.refusing)

    def test_a_failure_during_a_load_outlives_it(self):
        load = self.next_job_after_a_failure()
        self.commits.fail(Failure(RuntimeError("deposed")))
        self.run_job(load)
        self.assertEqual(self.answers([self.commits.write(*self.batch(1))]), ['deposed'])
        self.run_job(self.next_job('load'))
        self.assertIsNone(self.commits.failure)

    def next_job_after_a_failure(self):
        self.answers([self.commits.write(*self.batch(1))])
        self.run_job(self.next_job('commit'), OSError("disk I/O error"))
        return self.next_job('load')


class Pace(GroupCommitTest):
    """Issue 21: with the journal's disk full, every refused batch made the
    sequencer read its journal again."""

    def run_failing(self, seconds, every=0.01):
        """A batch every ``every`` seconds while every commit fails (the
        loads work: a full disk still reads); the loads run."""
        loads = 0
        self.load_times = []
        for tick in range(int(seconds / every)):
            self.now = tick * every
            self.answers([self.commits.write(*self.batch(1))])
            job = self.commits.next_job()
            if job is None:
                continue
            loads += job.kind == 'load'
            if job.kind == 'load':
                self.load_times.append(round(self.now, 2))
            self.run_job(job, OSError("database or disk is full") if job.kind == 'commit'
                         else None)
        return loads

    def test_a_journal_failing_for_10_s_is_read_again_at_most_13_times(self):
        self.assertEqual(self.run_failing(10), 13)
        self.assertEqual(self.commits.pace.failures, 14)   # commits tried and failed

    def test_the_first_load_comes_at_once_and_a_commit_ends_the_run(self):
        self.run_failing(3)
        self.now = 10
        self.run_job(self.next_job('load'))
        self.answers([self.commits.write(*self.batch(1))])
        self.run_job(self.next_job('commit'))
        self.assertEqual(self.commits.pace.failures, 0)
        self.answers([self.commits.write(*self.batch(2))])
        self.run_job(self.next_job('commit'), OSError("disk I/O error"))
        self.next_job('load')                     # at once again

    def test_a_reload_asked_for_is_not_held_back_by_the_pace(self):
        self.run_failing(1)
        self.assertFalse(self.commits.pace.allows())
        self.commits.reload()
        self.next_job('load')


class Stop(GroupCommitTest):

    def test_stop_fails_the_queue_refuses_batches_and_starts_nothing(self):
        self.answers([self.commits.write(*self.batch(1))])
        job = self.next_job('commit')
        queued = self.answers([self.commits.write(*self.batch(2))])
        self.commits.stop()
        self.assertEqual(queued, ['the router is stopping'])
        self.assertEqual(self.answers([self.commits.write(*self.batch(3))]),
                         ['the router is stopping'])
        self.run_job(job)          # the commit under way ends on its own
        self.assertEqual(self.owner.told, [('committed', [1])])
        self.assertIsNone(self.commits.next_job())
