"""The one-thread executor the router's journal writer, replay reader,
checkpoints and lease keeper each own."""

import threading

from twisted.internet import defer
from twisted.trial import unittest

from buildbot_mq_ordered.util.onethread import OneThread


def threads_named(name):
    return [t for t in threading.enumerate() if name in t.name]


class OneThreadTest(unittest.TestCase):

    @defer.inlineCallbacks
    def test_jobs_run_one_after_another_in_one_thread_of_its_own(self):
        one = OneThread('test-one-after-another')
        self.addCleanup(one.stop)
        ran = []

        def job(i, scale=1):
            ran.append((i, threading.current_thread()))
            return i * scale
        results = yield defer.gatherResults([one.run(job, i, scale=10) for i in range(5)])
        self.assertEqual(results, [0, 10, 20, 30, 40])
        self.assertEqual([i for i, _ in ran], list(range(5)))
        self.assertEqual(len({t for _, t in ran}), 1)
        self.assertIsNot(ran[0][1], threading.current_thread())
        self.assertIn('test-one-after-another', ran[0][1].name)

    @defer.inlineCallbacks
    def test_a_failed_job_fails_its_deferred_only(self):
        one = OneThread('test-failed-job')
        self.addCleanup(one.stop)

        def broken():
            raise OSError("disk I/O error")
        with self.assertRaises(OSError):
            yield one.run(broken)
        self.assertEqual((yield one.run(lambda: 'next')), 'next')

    @defer.inlineCallbacks
    def test_the_thread_starts_at_the_first_job_and_stop_ends_it(self):
        one = OneThread('test-start-stop')
        self.addCleanup(one.stop)
        one.stop()    # never started: nothing to end
        self.assertEqual(threads_named('test-start-stop'), [])
        yield one.run(lambda: None)
        self.assertEqual(len(threads_named('test-start-stop')), 1)
        one.stop()
        self.assertEqual(threads_named('test-start-stop'), [])
        self.assertEqual((yield one.run(lambda: 'again')), 'again')
