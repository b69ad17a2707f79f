"""A SQLite journal restored from an older copy while masters run (issue 22).

Three masters in processes of their own produce 300 messages/s each
through one router; the journal is copied (SQLite's backup API, as an
operator's backup does) and 1.5 s later the router is killed, the copy put
back in place of the journal and the router started again. Its stream has
the same id and a lower head: the masters' tail beyond the copy's head is
rewritten. Every master ends with the journal's history, every position
once, in order (the same on all), has dropped nothing of the new history,
and logs the rewritten tail once.

Before issue 22 the masters took the lower head for the same stream's end
and dropped the new history's first positions as "already delivered"."""

import os
import shutil
import sqlite3
import tempfile

from twisted.internet import defer
from twisted.internet import threads
from twisted.trial import unittest

from buildbot_mq_ordered.load.processes import Router
from tests.support.figures import report
from tests.support.tailrun import MastersOverRewrite
from tests.support.tailrun import entries_sqlite

PER_MASTER = 2100     # 7 s of production: the restart (about 3 s) falls inside
RATE = 300            # per master, messages/s
START_AFTER = 600     # messages every master delivered before the copy
COPY_AGE = 1.5        # seconds of journal the copy misses
# what a master's rewritten-tail error says (master/lineage.py)
TAIL_ERROR = 'was rewritten from position'


def backup(path, copy):
    """A consistent copy of a live SQLite file (its WAL included)."""
    src, dst = sqlite3.connect(path, timeout=5), sqlite3.connect(copy)
    try:
        src.backup(dst)
    finally:
        src.close()
        dst.close()


def put_back(copy, path):
    """The copy in the journal's place; the live file's WAL is not its."""
    for suffix in ('-wal', '-shm'):
        if os.path.exists(path + suffix):
            os.remove(path + suffix)
    shutil.copyfile(copy, path)


class JournalRestored(unittest.TestCase):
    timeout = 180

    @defer.inlineCallbacks
    def test_journal_restored_from_an_older_copy(self):
        router = yield threads.deferToThread(Router().start)
        self.addCleanup(router.cleanup)
        tmp = tempfile.mkdtemp(prefix='bmo-restore-')
        self.addCleanup(shutil.rmtree, tmp, True)
        path, copy = os.path.join(router.cbdir, 'sequencer.sqlite'), os.path.join(tmp, 'copy')
        run = MastersOverRewrite(self, [router.url], entries_sqlite(path), PER_MASTER, RATE)
        heads = {}

        def restore():
            router.kill()
            heads['killed'] = entries_sqlite(path)(heads['copy'])[-1][0]
            put_back(copy, path)
            router.start()

        def take_copy():
            backup(path, copy)
            heads['copy'] = entries_sqlite(copy)(0)[-1][0]
        yield run.run(START_AFTER, [(0, 'copy', take_copy), (COPY_AGE, 'restore', restore)])
        figures, problems = run.outcome(TAIL_ERROR)
        report('journal-restored', behind=heads['killed'] - heads['copy'], phases=run.phases,
               **figures)
        self.assertEqual(run.late, [], "the fault came after production: run longer")
        self.assertEqual(problems, [])
        self.assertTrue(figures['same_everywhere'])
        self.assertEqual(figures['rewrite_point'], heads['copy'] + 1)
        self.assertEqual(figures['tail_errors'], {m: 1 for m in figures['delivered']})
