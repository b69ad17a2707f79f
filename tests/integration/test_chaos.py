"""Faults against a real router: SIGKILL and restart mid-stream, a master's
connection cut for ~2 s, a rogue client, retention exceeded, a full outbox.
Every wait is bounded; figures are printed for the record (run with -s)."""

import os
import tempfile
import time

from autobahn.twisted.component import Component
from autobahn.wamp.exception import ApplicationError
from twisted.internet import defer
from twisted.internet import reactor
from twisted.trial import unittest

from buildbot_mq_ordered import wire
from buildbot_mq_ordered.load.nodes import NodeProcess
from buildbot_mq_ordered.load.nodes import run_nodes
from tests.support.figures import report
from tests.support.router import Router
from tests.support.router import shared_router
from tests.support.tcpproxy import CuttableProxy
from tests.support.util import Collector
from tests.support.util import assert_delivered_once_in_one_order
from tests.support.util import start_master
from tests.support.util import until
from tests.support.util import with_timeout

_open_router = None


def open_router():
    """A router with --open-realm: any client may publish on the stream."""
    global _open_router
    if _open_router is None:
        import atexit
        _open_router = Router(extra_args=['--open-realm']).start()
        atexit.register(_open_router.cleanup)
    return _open_router


class RouterKilled(unittest.TestCase):
    timeout = 400

    def test_sigkill_and_restart_mid_stream(self):
        # 1,500 each at 500/s: the kill comes 1,000 deliveries in, and the
        # rest is produced while the router is down (it restarts in ~5 s)
        masters, per_master = 3, 1500
        router = Router().start()
        self.addCleanup(router.cleanup)
        tmp = tempfile.mkdtemp(prefix='bmo-chaos-')
        nodes = [NodeProcess(router.url, f'm{i}', os.path.join(tmp, f'm{i}.json'),
                             messages=per_master, expect=masters * per_master,
                             rate=500, shared_keys=7, timeout=300)
                 for i in range(masters)]
        t = {}

        def fault():
            delivered = min(n.progress[0] for n in nodes)
            if 'kill' not in t and delivered >= 1000:
                t['kill'] = time.monotonic()
                t['delivered_at_kill'] = delivered
                router.kill()
                router.start()
                t['ready'] = time.monotonic()
        try:
            results = run_nodes(nodes, timeout=360, on_tick=fault)
            t['done'] = time.monotonic()
        finally:
            for n in nodes:
                n.stop()
        self.assertIn('kill', t, "the router was never killed")
        verdict = assert_delivered_once_in_one_order(self, nodes, results, per_master)
        report('router-sigkill', messages=masters * per_master,
               lost=sum(m.lost for m in verdict.masters),
               duplicated=sum(m.duplicated for m in verdict.masters),
               router_down_s=round(t['ready'] - t['kill'], 2),
               all_delivered_after_ready_s=round(t['done'] - t['ready'], 2),
               max_latency_s=round(max(max(r['latencies']) for r in results), 2))


class NetworkCut(unittest.TestCase):
    timeout = 300

    def test_one_master_cut_for_two_seconds(self):
        # 1,000 each at 500/s: cut a third in, for 2 s, while the others
        # produce the rest
        masters, per_master = 3, 1000
        router = shared_router()
        proxy = CuttableProxy(router.port)
        self.addCleanup(proxy.close)
        tmp = tempfile.mkdtemp(prefix='bmo-cut-')
        nodes = [NodeProcess(proxy.url if i == 0 else router.url, f'm{i}',
                             os.path.join(tmp, f'm{i}.json'),
                             messages=per_master, expect=masters * per_master,
                             rate=500, timeout=240)
                 for i in range(masters)]
        t = {}

        def fault():
            now = time.monotonic()
            if 'cut' not in t and nodes[0].progress[0] >= 1000:
                t['cut'] = now
                t['others_at_cut'] = nodes[1].progress[0]
                proxy.cut()
            elif 'cut' in t and 'restore' not in t and now - t['cut'] >= 2.0:
                t['restore'] = now
                proxy.restore()
        try:
            results = run_nodes(nodes, timeout=280, on_tick=fault)
        finally:
            for n in nodes:
                n.stop()
        self.assertIn('restore', t, "the connection was never cut and restored")
        assert_delivered_once_in_one_order(self, nodes, results, per_master)
        report('network-cut', messages=masters * per_master,
               cut_s=round(t['restore'] - t['cut'], 2),
               max_latency_cut_master_s=round(max(results[0]['latencies']), 2),
               max_latency_other_s=round(max(results[1]['latencies']), 2))


class Rogue(unittest.TestCase):
    timeout = 120

    @defer.inlineCallbacks
    def test_garbage_on_stream_and_submit(self):
        router = open_router()
        a = yield start_master(self, router)
        b = yield start_master(self, router)
        ca, cb = Collector(a), Collector(b)
        yield a.startConsuming(ca, (None, None))
        yield b.startConsuming(cb, (None, None))
        outcomes = {}

        @defer.inlineCallbacks
        def rogue(reactor_, session):
            head = b.follower.next_pos
            for garbage in ['garbage', None, [[1, 2]], [['x', 1, ['k'], '{}']],
                            [[10 ** 9, 1, ['rogue', 'far'], '{}']],
                            [[head, 1, ['rogue', 'forged'], '{"forged": true}']],
                            [[head + 1, 1, ['rogue', 'forged'], 'not json']]]:
                yield session.publish(wire.STREAM, garbage,
                                      options=_acknowledged())
            for args in [('p', 'not a list'), (42, []), ('p', [[0, ['k'], '{}']]),
                         ('p', [['x', ['k'], '{}']]), ('p', [[1, 'k', '{}']])]:
                try:
                    yield session.call(wire.SUBMIT, *args)
                    outcomes[repr(args)] = 'accepted'
                except ApplicationError as e:
                    outcomes[repr(args)] = e.error
            # well-formed envelope, data that is not msgpack: sequenced, then
            # ignored by every master with a log line
            yield session.call(wire.SUBMIT, 'rogue-producer', [[1, ['rogue', 'bad'], b'\xc1']])
            try:
                yield session.call(wire.REPLAY, 'x', 'y')
            except ApplicationError as e:
                outcomes['replay'] = e.error

        comp = Component(transports=[{'url': router.url, 'serializers': ['json'],
                                      'max_retries': 0}],
                         realm=router.realm, main=rogue)
        for i in range(100):
            a.produce(('good', str(i % 5)), {'i': i})
        yield with_timeout(comp.start(reactor), what='the rogue client')
        for i in range(100, 200):
            b.produce(('good', str(i % 5)), {'i': i})
        yield ca.wait_for(200)
        yield cb.wait_for(200)
        self.assertEqual([r[:2] for r in ca.received], [r[:2] for r in cb.received])
        self.assertEqual(sorted(d['i'] for d in ca.data), list(range(200)))
        self.assertTrue(all(k[0] == 'good' for k in ca.keys + cb.keys))
        self.assertEqual(set(outcomes.values()), {'buildbot.mq.ordered.error.malformed'})
        self.assertEqual(len(outcomes), 6)
        self.assertGreaterEqual(b.stats['foreign_events'], 7)


def _acknowledged():
    from autobahn.wamp.types import PublishOptions
    return PublishOptions(acknowledge=True)


class Edges(unittest.TestCase):
    timeout = 120

    @defer.inlineCallbacks
    def test_retention_exceeded_is_skipped_with_one_error(self):
        router = Router(extra_args=['--retention-messages', '20']).start()
        self.addCleanup(router.cleanup)
        proxy = CuttableProxy(router.port)
        self.addCleanup(proxy.close)
        a = yield start_master(self, router)
        b = yield start_master(self, router, router_url=proxy.url)
        ca, cb = Collector(a), Collector(b)
        yield a.startConsuming(ca, ('ret', None))
        yield b.startConsuming(cb, ('ret', None))
        a.produce(('ret', 'before'), {})
        yield cb.wait_for(1)
        proxy.cut()
        # one batch per message: the journal prunes every 200 appends
        for i in range(450):
            a.produce(('ret', 'gone'), {'i': i})
            yield ca.wait_for(2 + i)
        after = Collector(b)
        yield b.startConsuming(after, ('ret', 'after'))
        proxy.restore()
        a.produce(('ret', 'after'), {})
        yield after.wait_for(1)
        errors = self.flushLoggedErrors(RuntimeError)
        self.assertEqual(len(errors), 1)
        self.assertIn('no longer in the sequencer', str(errors[0].value))
        self.assertEqual(cb.keys[0], ('ret', 'before'))
        self.assertEqual(cb.keys[-1], ('ret', 'after'))
        # what was skipped plus what was replayed is exactly what was missed:
        # the replayed part is the newest, contiguous, in order
        gone = [d['i'] for k, d, _ in cb.received if k == ('ret', 'gone')]
        self.assertGreater(b.stats['skipped'], 0)
        self.assertEqual(b.stats['skipped'] + len(gone), 450)
        self.assertEqual(gone, list(range(450 - len(gone), 450)))

    @defer.inlineCallbacks
    def test_full_outbox_drops_oldest_with_an_error(self):
        router = shared_router()
        proxy = CuttableProxy(router.port)
        self.addCleanup(proxy.close)
        a = yield start_master(self, router, router_url=proxy.url, max_outbox=10)
        b = yield start_master(self, router)
        cb = Collector(b)
        yield b.startConsuming(cb, ('full', None))
        proxy.cut()
        # the cut is seen when the next frame fails or the socket closes
        yield with_timeout(until(lambda: a.session is None), what='the cut')
        for i in range(25):
            a.produce(('full', str(i)), {'i': i})
        self.assertEqual(a.stats['outbox_dropped'], 15)
        proxy.restore()
        yield cb.wait_for(10)
        self.assertEqual([d['i'] for d in cb.data], list(range(15, 25)))
        errors = self.flushLoggedErrors(RuntimeError)
        self.assertEqual(len(errors), 1)
        self.assertIn('outbox full', str(errors[0].value))
