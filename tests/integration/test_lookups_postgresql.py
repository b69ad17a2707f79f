"""Key lookups on a PostgreSQL journal (issue 21, item 4): many keys in a
few queries, in the lookup thread on a connection of its own, never on the
reactor nor on the writer's connection."""

import threading

from twisted.internet import defer
from twisted.trial import unittest

from buildbot_mq_ordered.router.journal import JournalReader
from buildbot_mq_ordered.router.journal import base
from buildbot_mq_ordered.router.journal import open_journal
from tests.support.pgutil import fresh_database


class Lookups(unittest.TestCase):
    timeout = 60

    @defer.inlineCallbacks
    def test_many_keys_in_the_lookup_thread(self):
        j = open_journal(fresh_database(self))
        self.addCleanup(j.close)
        j.begin_term()
        keys = [('k', str(i)) for i in range(base.LOOKUP_CHUNK * 2 + 7)]
        j.append([(i + 1, 3, key, b'x', j.term_id) for i, key in enumerate(keys[::2])], 'p', 1)
        lookups = JournalReader(j, 'journal-lookups', in_place=j.lookups_in_place)
        self.addCleanup(lookups.stop)
        where = []
        real = j.read_last_seqs

        def read_last_seqs(db, keys):
            where.append((threading.current_thread(), db))
            return real(db, keys)
        j.read_last_seqs = read_last_seqs
        seqs = yield lookups.last_seqs(keys + [('new', 'é')])
        self.assertEqual(seqs, {**{k: 3 if i % 2 == 0 else 0 for i, k in enumerate(keys)},
                                ('new', 'é'): 0})
        [(thread, db)] = where
        self.assertIsNot(thread, threading.main_thread())
        self.assertIsNot(db, j._db)
