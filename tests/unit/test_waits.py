"""What the MQ service waits for (StartGate, IdleWatch) and its link's
lifecycle (LinkKeeper), without a router: on a Clock, with stand-in links."""

from twisted.internet import defer
from twisted.internet import task
from twisted.trial import unittest

from buildbot_mq_ordered.master import config as mqconfig
from buildbot_mq_ordered.master.linkkeeper import LinkKeeper
from buildbot_mq_ordered.master.waits import IdleWatch
from buildbot_mq_ordered.master.waits import StartGate
from tests.support.logevents import LogEvents


def gate():
    return StartGate(lambda: ('buildbot', 'ws://r/ws'))


class Gate(unittest.TestCase):

    def test_waits_until_opened_then_not_at_all(self):
        g = gate()
        waiting = g.wait()
        self.assertFalse(waiting.called)
        g.opened()
        self.assertTrue(waiting.called)
        self.assertTrue(g.wait().called)

    def test_a_stop_before_any_join_fails_the_waits(self):
        g = gate()
        waits = [g.wait(), g.wait()]
        g.give_up()
        for d in waits:
            f = self.failureResultOf(d, RuntimeError)
            self.assertEqual(str(f.value), "ordered-wamp: stopping before this master ever "
                                           "joined realm 'buildbot' at ws://r/ws: the "
                                           "consumer never became effective")
        g.opened()
        g.give_up()      # open: nothing to give up

    def test_a_shutdown_before_any_join_lets_the_start_up_through_and_says_so(self):
        logs = LogEvents(self)
        g = gate()
        g.let_through()                      # nobody waits: nothing said
        self.assertEqual(logs.texts(), [])
        waiting = g.wait()
        g.let_through()
        self.assertIsNone(self.successResultOf(waiting))
        self.assertEqual(logs.texts(), [
            "ordered-wamp: stopping before this master ever joined realm 'buildbot' at "
            "ws://r/ws: Buildbot's start-up goes on without the router so that the master "
            "can stop; nothing was delivered"])


class Idle(unittest.TestCase):

    def test_fires_when_idle_or_after_the_timeout(self):
        clock = task.Clock()
        idle = [False]
        watch = IdleWatch(lambda: idle[0], clock)
        first, second = watch.wait(5), watch.wait(10)
        watch.check()
        self.assertFalse(first.called)
        clock.advance(5)
        self.assertTrue(first.called)            # timed out
        idle[0] = True
        watch.check()
        self.assertTrue(second.called)
        self.assertTrue(watch.wait(5).called)     # idle: at once
        clock.advance(10)
        self.assertEqual(clock.getDelayedCalls(), [])


class StandInLink:
    """Records its life; stop() waits for the test."""

    made = []

    def __init__(self, urls, realm, on_join, on_leave, backoff, **kwargs):
        self.url = urls
        self.session = None
        self.started = False
        self.stopping = defer.Deferred()
        self.made.append(self)

    def start(self):
        self.started = True
        return defer.Deferred()

    def stop(self):
        return self.stopping


class MQ:
    """What a LinkKeeper reads of its MQ."""
    running = True
    master = None
    options = mqconfig.resolve({'router_url': ['ws://a/ws', 'ws://b/ws']})


class Keeper(unittest.TestCase):

    def setUp(self):
        StandInLink.made = []
        self.keeper = LinkKeeper(MQ(), None, None, None, link_class=StandInLink)

    def test_one_at_a_time(self):
        k = self.keeper
        self.assertEqual(k.where(), 'ws://a/ws or ws://b/ws')
        k.start()
        (first,) = StandInLink.made
        self.assertTrue(first.started)
        k.restart()
        k.restart()
        self.assertTrue(k.busy)
        self.assertEqual(len(StandInLink.made), 1)   # the first is still stopping
        first.stopping.callback(None)
        second = StandInLink.made[1]
        self.assertEqual(len(StandInLink.made), 2)   # the second restart waits for it
        second.stopping.callback(None)
        self.assertEqual(len(StandInLink.made), 3)
        self.assertFalse(k.busy)
        self.assertIs(k.link, StandInLink.made[2])

    def test_once_stopping_nothing_is_started(self):
        k = self.keeper
        k.start()
        k.stopping = True
        k.restart()
        StandInLink.made[0].stopping.callback(None)   # (its stop, below, is then quick)
        self.assertEqual(len(StandInLink.made), 1)
        d = k.stop()
        self.assertTrue(d.called)
        self.assertIsNone(k.link)
        k.start()                                      # a new start of the service
        self.assertEqual(len(StandInLink.made), 2)
