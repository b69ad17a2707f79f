"""A router that lost its journal starts a new stream, with a new stream id;
masters that were away meanwhile notice by the id, not by positions.

Issue 10: before stream ids, two masters away while a third pushed the new
stream's head past their position resumed there and never delivered the new
positions below it; with the new head below their position, positions were
skipped without a count. Here the journal is wiped while two masters are cut
off, a third produces ``new`` messages on the new stream, and then the two
come back: with the new head below, equal to and beyond their position,
each delivers every message of the new stream, in the third's order, and
logs one error naming both stream ids."""

import glob
import os

from twisted.internet import defer
from twisted.internet import threads
from twisted.trial import unittest

from tests.support.router import Router
from tests.support.tcpproxy import CuttableProxy
from tests.support.util import Collector
from tests.support.util import start_master

OLD = 30   # messages on the old stream: the away masters' position


class JournalLost(unittest.TestCase):
    timeout = 180

    @defer.inlineCallbacks
    def journal_lost_while_away(self, new):
        router = Router().start()
        self.addCleanup(router.cleanup)
        proxies = [CuttableProxy(router.port) for _ in range(2)]
        for p in proxies:
            self.addCleanup(p.close)
        away = []
        for p in proxies:
            m = yield start_master(self, router, router_url=p.url)
            c = Collector(m)
            yield m.startConsuming(c, ('s', None))
            away.append((m, c))
        for i in range(OLD):
            away[0][0].produce(('s', 'old'), {'i': i})
        for m, c in away:
            yield c.wait_for(OLD)
        old_stream = away[0][0].stream_id

        for p in proxies:
            p.cut()
        router.kill()
        for path in glob.glob(os.path.join(router.cbdir, 'sequencer.sqlite*')):
            os.remove(path)
        yield threads.deferToThread(router.start)

        third = yield start_master(self, router)
        seen = Collector(third)
        yield third.startConsuming(seen, ('s', None))
        for i in range(new):
            third.produce(('s', 'new'), {'i': i})
        yield seen.wait_for(new)
        self.assertNotEqual(third.stream_id, old_stream)

        for p in proxies:
            p.restore()
        for m, c in away:
            yield c.wait_for(OLD + new)
        # produced while nobody was away: everyone delivers it after the rest
        away[1][0].produce(('s', 'after'), {})
        yield seen.wait_for(new + 1)
        for m, c in away:
            yield c.wait_for(OLD + new + 1)
            self.assertEqual(m.stream_id, third.stream_id)
            self.assertEqual(m.stats['stream_changes'], 1)
            after_switch = [(r[0], r[1], r[2]) for r in c.received[OLD:]]
            self.assertEqual(after_switch, [(r[0], r[1], r[2]) for r in seen.received])
            self.assertEqual([r[2][0] for r in after_switch], list(range(1, new + 2)))
        errors = self.flushLoggedErrors(RuntimeError)
        self.assertEqual(len(errors), 2, [str(e.value) for e in errors])
        for e in errors:
            text = str(e.value)
            self.assertIn(f"now serves stream {third.stream_id}", text)
            self.assertIn(f"not stream {old_stream}", text)
            self.assertIn(f"up to position {OLD}", text)

    def test_new_head_below_their_position(self):
        return self.journal_lost_while_away(new=OLD // 2)

    def test_new_head_at_their_position(self):
        return self.journal_lost_while_away(new=OLD)

    def test_new_head_beyond_their_position(self):
        return self.journal_lost_while_away(new=OLD * 3)
