"""Buildbot's MQ contract, case by case, for two masters (two OrderedWampMQ
instances with their own sessions) in this process on a real router: a
TestCase mixin (``make_router``, ``master_options``) run over ws:// and
over wss://."""

from twisted.internet import defer

from tests.support.router import shared_router
from tests.support.util import ODD_DATA
from tests.support.util import ODD_KEYS
from tests.support.util import Collector
from tests.support.util import start_master
from tests.support.util import with_timeout


class ContractTests:

    timeout = 120

    def make_router(self):
        return shared_router()

    def master_options(self):
        return {}

    @defer.inlineCallbacks
    def setUp(self):
        self.router = self.make_router()
        self.a = yield start_master(self, self.router, **self.master_options())
        self.b = yield start_master(self, self.router, **self.master_options())

    @defer.inlineCallbacks
    def test_both_masters_deliver_in_one_order(self):
        ca, cb = Collector(self.a), Collector(self.b)
        yield self.a.startConsuming(ca, ('order', None))
        yield self.b.startConsuming(cb, ('order', None))
        for i in range(100):
            (self.a if i % 2 else self.b).produce(('order', str(i % 7)), {'i': i})
        yield ca.wait_for(100)
        yield cb.wait_for(100)
        self.assertEqual([r[1:] for r in ca.received], [r[1:] for r in cb.received])
        self.assertEqual(sorted(d['i'] for d in ca.data), list(range(100)))
        positions = ca.positions
        self.assertEqual(positions, sorted(positions))
        self.assertEqual(len(set(positions)), 100)
        # messages from one producer keep their produce order
        from_a = [d['i'] for d in ca.data if d['i'] % 2]
        self.assertEqual(from_a, sorted(from_a))

    @defer.inlineCallbacks
    def test_per_key_sequence_numbers(self):
        c = Collector(self.b)
        yield self.b.startConsuming(c, ('seqs', None))
        for i in range(30):
            self.a.produce(('seqs', 'k%d' % (i % 3)), {'i': i})
        yield c.wait_for(30)
        per_key = {}
        for key, _, (pos, seq) in c.received:
            per_key.setdefault(key, []).append(seq)
        self.assertEqual(len(per_key), 3)
        for seqs in per_key.values():
            # a fresh key per test run: counts from where that key was
            self.assertEqual(seqs, list(range(seqs[0], seqs[0] + 10)))

    @defer.inlineCallbacks
    def test_odd_routing_keys_and_data_round_trip(self):
        c = Collector(self.b)
        for key in ODD_KEYS:
            yield self.b.startConsuming(c, key)
        # every odd value, each under one of the odd keys in turn
        keys = [ODD_KEYS[i % len(ODD_KEYS)] for i in range(len(ODD_DATA))]
        for key, data in zip(keys, ODD_DATA):
            self.a.produce(key, data)
        yield c.wait_for(len(ODD_DATA))
        self.assertEqual(c.keys, keys)
        self.assertEqual(c.data, ODD_DATA)

    @defer.inlineCallbacks
    def test_reconfig_of_a_connection_key_reconnects_and_loses_nothing(self):
        from tests.support.util import FakeConfig
        from tests.support.util import mq_config
        c = Collector(self.b)
        yield self.b.startConsuming(c, ('reconf', None))
        old_link = self.b.link
        options = dict(self.master_options(), max_retry_delay=2.0)
        yield self.b.reconfigServiceWithBuildbotConfig(
            FakeConfig(mq_config(self.router, **options)))
        for i in range(20):
            self.a.produce(('reconf', str(i)), {'i': i})
            self.b.produce(('reconf', str(i)), {'i': 100 + i})
        yield c.wait_for(40)
        self.assertIsNot(self.b.link, old_link)
        self.assertEqual(sorted(d['i'] for d in c.data),
                         list(range(20)) + list(range(100, 120)))

    @defer.inlineCallbacks
    def test_tuple_matching(self):
        got = {}

        def consumer(name):
            def cb(key, data):
                got.setdefault(name, []).append(key)
            return cb
        filters = {
            'exact': ('m', 'x', 'new'),
            'wild': ('m', None, 'new'),
            'empty': ('m', '', 'new'),
            'short': ('m', None),
            'all3': (None, None, None),
        }
        for name, f in filters.items():
            yield self.b.startConsuming(consumer(name), f)
        done = Collector(self.b)
        yield self.b.startConsuming(done, ('m-done',))
        for key in [('m', 'x', 'new'), ('m', '', 'new'), ('m', 'y', 'new'),
                    ('m', 'x', 'old'), ('m', 'x'), ('m', 'x', 'new', 'extra')]:
            self.a.produce(key, {})
        self.a.produce(('m-done',), {})
        yield done.wait_for(1)
        self.assertEqual(got['exact'], [('m', 'x', 'new')])
        self.assertEqual(got['wild'], [('m', 'x', 'new'), ('m', '', 'new'), ('m', 'y', 'new')])
        self.assertEqual(got['empty'], [('m', '', 'new')])
        self.assertEqual(got['short'], [('m', 'x')])
        self.assertEqual(len(got['all3']), 4)

    @defer.inlineCallbacks
    def test_master_receives_its_own_messages(self):
        c = Collector(self.a)
        yield self.a.startConsuming(c, ('own', None))
        self.a.produce(('own', '1'), {'v': 1})
        received = yield c.wait_for(1)
        self.assertEqual(received[0][:2], (('own', '1'), {'v': 1}))

    @defer.inlineCallbacks
    def test_start_consuming_effective_when_deferred_fires(self):
        # produce right after the Deferred fired, on the other master
        for i in range(20):
            c = Collector(self.b)
            qref = yield self.b.startConsuming(c, ('eff', str(i)))
            self.a.produce(('eff', str(i)), {'i': i})
            got = yield c.wait_for(1)
            self.assertEqual(got[0][1], {'i': i})
            yield qref.stopConsuming()

    @defer.inlineCallbacks
    def test_stop_consuming_is_immediate_and_idempotent(self):
        c = Collector(self.b)
        after = Collector(self.b)
        qref = yield self.b.startConsuming(c, ('stop', None))
        self.a.produce(('stop', 'before'), {})
        yield c.wait_for(1)
        yield qref.stopConsuming()
        yield qref.stopConsuming()
        yield self.b.startConsuming(after, ('stop', None))
        self.a.produce(('stop', 'after'), {})
        yield after.wait_for(1)
        self.assertEqual(c.keys, [('stop', 'before')])

    @defer.inlineCallbacks
    def test_stop_consuming_inside_callback(self):
        got = []
        qrefs = []

        def cb(key, data):
            got.append(key)
            qrefs[0].stopConsuming()
        qrefs.append((yield self.b.startConsuming(cb, ('cbstop', None))))
        done = Collector(self.b)
        yield self.b.startConsuming(done, ('cbstop', None))
        self.a.produce(('cbstop', '1'), {})
        self.a.produce(('cbstop', '2'), {})
        yield done.wait_for(2)
        self.assertEqual(got, [('cbstop', '1')])

    @defer.inlineCallbacks
    def test_persistent_consumer_queues_while_stopped(self):
        c1 = Collector(self.b)
        qref = yield self.b.startConsuming(c1, ('pers', None), persistent_name='p1')
        self.a.produce(('pers', '1'), {'n': 1})
        yield c1.wait_for(1)
        yield qref.stopConsuming()
        marker = Collector(self.b)
        yield self.b.startConsuming(marker, ('pers', None))
        self.a.produce(('pers', '2'), {'n': 2})
        self.a.produce(('pers', '3'), {'n': 3})
        yield marker.wait_for(2)
        c2 = Collector(self.b)
        yield self.b.startConsuming(c2, ('pers', None), persistent_name='p1')
        self.assertEqual(c2.data, [{'n': 2}, {'n': 3}])
        self.a.produce(('pers', '4'), {'n': 4})
        yield c2.wait_for(3)
        self.assertEqual(c2.data, [{'n': 2}, {'n': 3}, {'n': 4}])
        self.assertEqual(c1.data, [{'n': 1}])

    @defer.inlineCallbacks
    def test_wait_until_event(self):
        # the event comes after the check said "not yet"
        def check():
            self.a.produce(('wue', 'done'), {'ok': True})
            return defer.succeed(False)
        res = yield with_timeout(self.b.waitUntilEvent(('wue', None), check))
        self.assertEqual(res, (('wue', 'done'), {'ok': True}))

    @defer.inlineCallbacks
    def test_wait_until_event_check_true(self):
        res = yield with_timeout(
            self.b.waitUntilEvent(('wue2', None), lambda: defer.succeed(True)))
        self.assertIsNone(res)

    @defer.inlineCallbacks
    def test_one_reactor_turn_is_one_submit(self):
        c = Collector(self.b)
        yield self.b.startConsuming(c, ('turn', None))
        before = self.a.stats['batches']
        for i in range(200):
            self.a.produce(('turn', str(i)), {'i': i})
        yield c.wait_for(200)
        self.assertEqual(self.a.stats['batches'] - before, 1)

    @defer.inlineCallbacks
    def test_unserialisable_is_logged_once_and_dropped(self):
        c = Collector(self.b)
        yield self.b.startConsuming(c, ('bad', None))
        self.a.produce(('bad', '1'), {'v': 1})
        self.a.produce(('bad', '2'), {'v': object()})
        self.a.produce(('bad', '3'), {'v': 3})
        yield c.wait_for(2)
        self.assertEqual(c.keys, [('bad', '1'), ('bad', '3')])
        errors = self.flushLoggedErrors(ValueError)
        self.assertEqual(len(errors), 1)
        self.assertIn("('bad', '2')", str(errors[0].value) + repr(errors[0]))

    @defer.inlineCallbacks
    def test_too_large_is_logged_and_dropped_alone(self):
        c = Collector(self.b)
        yield self.b.startConsuming(c, ('big', None))
        self.a.options['max_message_size'] = 10000
        self.a.produce(('big', '1'), {'v': 'x'})
        self.a.produce(('big', '2'), {'v': 'x' * 20000})
        self.a.produce(('big', '3'), {'v': 'y'})
        yield c.wait_for(2)
        self.assertEqual(c.keys, [('big', '1'), ('big', '3')])
        self.assertEqual(len(self.flushLoggedErrors(ValueError)), 1)

    @defer.inlineCallbacks
    def test_what_buildbot_sends_arrives_as_sent(self):
        # as SimpleMQ hands it over: datetimes, bytes (a patch body in a
        # buildset's sourcestamp: issue 9, try jobs lost their buildsets),
        # integer dict keys; tuples arrive as lists (documented)
        import datetime

        from buildbot.util import epoch2datetime
        c = Collector(self.b)
        yield self.b.startConsuming(c, ('buildsets', None, 'new'))
        when = epoch2datetime(1577934245)
        naive = datetime.datetime(2020, 1, 2, 3, 4, 5, 6)
        patch = {'patchid': 1, 'body': b'--- a\n+++ b\n\xff', 'level': 1}
        msg = {'bsid': 7, 'submitted_at': when, 'naive': naive, 'by_id': {1: 'x'},
               'sourcestamps': [{'ssid': 1, 'patch': patch, 'created_at': when}],
               'properties': {'reason': ('forced', 'Force Build Form')}}
        self.a.produce(('buildsets', '7', 'new'), msg)
        yield c.wait_for(1)
        got = c.data[0]
        expected = dict(msg, properties={'reason': ['forced', 'Force Build Form']})
        self.assertEqual(got, expected)
        self.assertIsInstance(got['sourcestamps'][0]['patch']['body'], bytes)
        self.assertEqual(got['submitted_at'].utcoffset(), datetime.timedelta(0))
        self.assertIsNone(got['naive'].tzinfo)
        self.assertEqual(self.a.stats['rejected'], 0)

    @defer.inlineCallbacks
    def test_stop_service_waits_for_callback_deferreds(self):
        from twisted.internet import reactor
        finished = []
        started = defer.Deferred()

        def slow(key, data):
            started.callback(None)
            d = defer.Deferred()
            reactor.callLater(0.2, d.callback, None)
            d.addCallback(lambda _: finished.append(key))
            return d
        yield self.b.startConsuming(slow, ('slow',))
        self.a.produce(('slow',), {})
        yield with_timeout(started)
        yield self.b.parent.stopService()
        self.assertEqual(finished, [('slow',)])
