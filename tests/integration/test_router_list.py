"""``router_url`` as a list: a master joins the first router that serves it
and moves on to the next when one is down (the failover of a leader between
routers on one PostgreSQL journal is tested in tests/integration/test_failover.py)."""

from twisted.internet import defer
from twisted.trial import unittest

from buildbot_mq_ordered.load.processes import free_port
from tests.support.logevents import LogEvents
from tests.support.router import shared_router
from tests.support.util import Collector
from tests.support.util import start_master
from tests.support.util import with_timeout


class RouterList(unittest.TestCase):
    timeout = 120

    @defer.inlineCallbacks
    def test_a_router_down_is_passed_over(self):
        router = shared_router()
        down = f'ws://127.0.0.1:{free_port()}/ws'
        logs = LogEvents(self)
        m = yield start_master(self, router, router_url=[down, router.url])
        got = Collector()
        yield with_timeout(m.startConsuming(got, ('list', None)), what='the join')
        self.assertEqual(m.link.url, router.url)
        m.produce(('list', 'x'), {'n': 1})
        yield got.wait_for(1)
        self.assertEqual(got.received[0][1], {'n': 1})
        said = logs.texts()
        self.assertIn(f"ordered-wamp: connecting to the router at {down} or {router.url}, "
                      "realm 'buildbot'", said)
        self.assertTrue(any(t.startswith(f"ordered-wamp: waiting for the router at {down}")
                            for t in said), said)
        self.assertIn(f"ordered-wamp: joined realm 'buildbot' at {router.url}",
                      [t.split(' after ')[0] for t in said])
