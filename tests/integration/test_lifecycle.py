"""OrderedWampMQ's lifecycle against a real router: link start, restart on
reconfig and stop one at a time; stop waits for running callbacks and sends
what they produced; a start-up still waiting for the router fails at stop.

Issue 10: a reconfig racing stopService left a link retrying after the
master stopped, two quick reconfigs left two live links, a message produced
by a callback during stop was lost without a word, and pending
startConsuming Deferreds never fired."""

from twisted.internet import defer
from twisted.internet import reactor
from twisted.trial import unittest

from buildbot_mq_ordered.load.processes import free_port
from buildbot_mq_ordered.master import linkkeeper
from tests.support.router import shared_router
from tests.support.util import Collector
from tests.support.util import FakeConfig
from tests.support.util import mq_config
from tests.support.util import start_master
from tests.support.util import stop_master
from tests.support.util import until
from tests.support.util import with_timeout


class Lifecycle(unittest.TestCase):
    timeout = 120

    def setUp(self):
        self.router = shared_router()
        # every link a master makes, to check none is left running
        self.links = []
        real = linkkeeper.RouterLink
        links = self.links

        class RecordedLink(real):
            def __init__(self, *args, **kwargs):
                super().__init__(*args, **kwargs)
                links.append(self)
        self.patch(linkkeeper, 'RouterLink', RecordedLink)

    def reconfig(self, m, **options):
        return m.reconfigServiceWithBuildbotConfig(
            FakeConfig(mq_config(self.router, **options)))

    def idle_lock(self, m):
        return with_timeout(until(lambda: not m.links.busy), what='the link lock')

    @defer.inlineCallbacks
    def test_reconfig_racing_stop_leaves_no_link(self):
        m = yield start_master(self, self.router)
        yield m.startConsuming(lambda k, d: None, ('x',))
        self.reconfig(m, max_retry_delay=2.0)      # restart under way ...
        yield with_timeout(stop_master(m), what='the stop')   # ... and stop at once
        yield self.idle_lock(m)
        self.assertIsNone(m.link)
        self.assertTrue(all(link._stopping for link in self.links))
        self.assertTrue(all(link.session is None for link in self.links))

    @defer.inlineCallbacks
    def test_two_quick_reconfigs_leave_one_link(self):
        m = yield start_master(self, self.router)
        c = Collector(m)
        yield m.startConsuming(c, ('quick', None))
        self.reconfig(m, max_retry_delay=2.0)
        self.reconfig(m, max_retry_delay=3.0)
        yield self.idle_lock(m)
        live = [link for link in self.links if not link._stopping]
        self.assertEqual(live, [m.link])
        self.assertEqual(len(self.links), 3)
        m.produce(('quick', '1'), {})
        yield c.wait_for(1)

    @defer.inlineCallbacks
    def test_a_message_produced_by_a_callback_during_stop_is_sent(self):
        a = yield start_master(self, self.router)
        b = yield start_master(self, self.router)
        out = Collector(b)
        yield b.startConsuming(out, ('during-stop', 'out'))
        release = defer.Deferred()
        called = defer.Deferred()

        def callback(key, data):
            # a consumer that is still working when the master stops, and
            # produces when it is done (as Buildbot's services do)
            called.callback(None)
            release.addCallback(lambda _: a.produce(('during-stop', 'out'), {'late': 1}))
            return release
        yield a.startConsuming(callback, ('during-stop', 'in'))
        a.produce(('during-stop', 'in'), {})
        yield with_timeout(called, what='the callback')
        stopping = stop_master(a)
        reactor.callLater(0, release.callback, None)
        yield with_timeout(stopping, what='the stop')
        yield out.wait_for(1)
        self.assertEqual(out.data, [{'late': 1}])
        self.assertEqual(len(a.outbox), 0)

    @defer.inlineCallbacks
    def test_start_waiting_for_the_router_fails_at_stop(self):
        nowhere = f'ws://127.0.0.1:{free_port()}/ws'
        m = yield start_master(self, self.router, router_url=nowhere)
        waiting = m.startConsuming(lambda k, d: None, ('x',))
        self.assertFalse(waiting.called)
        yield with_timeout(stop_master(m), what='the stop')
        with self.assertRaises(RuntimeError) as cm:
            yield waiting
        self.assertIn(nowhere, str(cm.exception))
        self.assertIn('before this master ever joined', str(cm.exception))
