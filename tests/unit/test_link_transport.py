"""What a master asks of its WebSocket: a router that stops answering is
left within seconds, so a standby that took over gets the master."""

from twisted.trial import unittest

from buildbot_mq_ordered.master.link import transport_config
from buildbot_mq_ordered.router.leadership import LEASE_SECONDS


class Transport(unittest.TestCase):

    def test_a_silent_router_is_left_within_the_lease_and_a_second(self):
        options = transport_config('ws://127.0.0.1:1/ws', ['msgpack'])['options']
        silent_for = options['autoPingInterval'] + options['autoPingTimeout']
        self.assertLessEqual(silent_for, LEASE_SECONDS + 1)
        # and not so eagerly that a busy router is left
        self.assertGreaterEqual(options['autoPingTimeout'], 2)

    def test_one_attempt_per_component(self):
        self.assertEqual(transport_config('ws://127.0.0.1:1/ws', ['msgpack'])['max_retries'], 0)
