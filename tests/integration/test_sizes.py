"""Sizes that cannot wedge a master, against a real router.

Issue 10: keys were not counted in a message's size nor in a batch's byte
budget. One 17 MiB key, or 2,000 messages with 9,000-character keys (each
acceptable alone), made a submit frame the router refused; the master
resent it after every rejoin, forever. And replay was capped by count, not
bytes: a master cut off while 5,000 messages of 4 KiB were produced asked
for a 20.5 MB answer, which the router refused, and stalled for good."""

from twisted.internet import defer
from twisted.trial import unittest

from buildbot_mq_ordered import wire
from tests.support.router import shared_router
from tests.support.tcpproxy import CuttableProxy
from tests.support.util import Collector
from tests.support.util import start_master
from tests.support.util import until
from tests.support.util import with_timeout


class OversizedKeys(unittest.TestCase):
    timeout = 180

    @defer.inlineCallbacks
    def test_huge_keys_are_refused_and_the_master_keeps_producing(self):
        router = shared_router()
        a = yield start_master(self, router)
        b = yield start_master(self, router)
        got = Collector(b)
        yield b.startConsuming(got, ('sizes', None))
        a.produce(('sizes', 'k' * (17 * 2 ** 20)), {})            # one 17 MiB key
        a.produce(('sizes', 'k' * 9000), {})                       # over the key bound
        # 2,000 messages with keys just under the bound: 8 MiB of keys, over
        # two batches since keys count in the batch budget
        long_key = ('sizes', 'k' * (wire.MAX_KEY_BYTES - len('sizes') - 1))
        for i in range(2000):
            a.produce(long_key, {'i': i})
        for i in range(10):
            a.produce(('sizes', 'after'), {'i': i})
        yield got.wait_for(2010, timeout=120)
        self.assertEqual([d['i'] for d in got.data[:2000]], list(range(2000)))
        self.assertEqual(got.keys[2000:], [('sizes', 'after')] * 10)
        errors = self.flushLoggedErrors(wire.MessageRejected)
        self.assertEqual(len(errors), 2)
        for e in errors:
            self.assertIn("exceeds the sequencer's limit", str(e.value))
        self.assertEqual(a.stats['rejected'], 2)
        self.assertGreaterEqual(a.stats['batches'], 2)
        # acknowledged too: a's answers may come after b's events (another
        # connection)
        yield with_timeout(until(lambda: not len(a.outbox)), what="a's acknowledgements")


class LargeReplay(unittest.TestCase):
    timeout = 300

    @defer.inlineCallbacks
    def test_a_replay_larger_than_a_frame_arrives_in_parts(self):
        router = shared_router()
        proxy = CuttableProxy(router.port)
        self.addCleanup(proxy.close)
        a = yield start_master(self, router)
        b = yield start_master(self, router, router_url=proxy.url)
        seen_a, seen_b = Collector(a), Collector(b)
        yield a.startConsuming(seen_a, ('replay', None))
        yield b.startConsuming(seen_b, ('replay', None))
        a.produce(('replay', 'before'), {})
        yield seen_b.wait_for(1)
        proxy.cut()
        # 5,000 messages of 4 KiB: 20 MB, more than the router's 16 MiB frames
        for i in range(5000):
            a.produce(('replay', 'missed'), {'i': i, 'pad': 'x' * 4096})
        yield seen_a.wait_for(5001, timeout=120)
        proxy.restore()
        yield seen_b.wait_for(5001, timeout=120)
        self.assertEqual([r[2] for r in seen_b.received], [r[2] for r in seen_a.received])
        self.assertEqual(b.stats['skipped'], 0)
