"""ConnectPolicy: a link's decisions after each event of its connection
(which router next, after which delay) and the lines the operator reads
(pure: events in, decisions out; the texts are quoted by docs and by the
integration tests, so they are checked whole here)."""

from autobahn.wamp.exception import ApplicationError
from twisted.internet import error
from twisted.trial import unittest

from buildbot_mq_ordered.master.connectpolicy import ConnectPolicy
from buildbot_mq_ordered.master.connectpolicy import Say
from buildbot_mq_ordered.util.backoff import Backoff

URL = 'ws://h:1/ws'
REFUSED = error.ConnectionRefusedError('111: Connection refused')


def policy(urls=URL, authid=None):
    return ConnectPolicy(urls, 'buildbot', Backoff(0.5, 2.0, 8.0), authid=authid)


def refusal(reason='wamp.error.not_authorized', text='nope'):
    return ApplicationError(reason, text)


class Lines(unittest.TestCase):

    def test_connecting_names_every_router(self):
        self.assertEqual(policy([URL, 'ws://g:2/ws']).connecting().text,
                         "ordered-wamp: connecting to the router at ws://h:1/ws or "
                         "ws://g:2/ws, realm 'buildbot'")

    def test_the_first_failure_says_it_waits(self):
        say = policy().failed(REFUSED, 100.0)
        self.assertEqual(say.level, 'info')
        self.assertEqual(
            say.text, "ordered-wamp: waiting for the router at ws://h:1/ws, realm 'buildbot' "
                      "(Connection was refused by other side: 111: Connection refused); "
                      "retrying with backoff. Buildbot's start-up waits until the master "
                      "has joined.")

    def test_reminders_at_growing_intervals(self):
        p = policy()
        said = []
        texts = []
        for t in range(0, 700, 5):
            say = p.failed(REFUSED, 1000.0 + t)
            if say is not None:
                said.append(t)
                texts.append(say.text)
        self.assertEqual(said, [0, 10, 20, 40, 80, 160, 320, 640])
        self.assertEqual(
            texts[-2], "ordered-wamp: still not joined realm 'buildbot' at ws://h:1/ws "
                       "after 5m20s (Connection was refused by other side: 111: Connection "
                       "refused). Buildbot's start-up waits until the master has joined.")

    def test_a_refusal_is_one_error_per_reason_with_its_hint(self):
        p = policy(authid='m1')
        say = p.failed(refusal(), 0.0)
        self.assertEqual(say.level, 'error')
        self.assertEqual(
            say.text, "ordered-wamp: the router at ws://h:1/ws refused to let this master "
                      "join realm 'buildbot' as 'm1': wamp.error.not_authorized: nope. Fix: "
                      "check c['mq']['authid'] and its secret against the router's "
                      "--secret-file. Retrying with backoff.")
        self.assertIsNone(p.failed(refusal(), 1.0))      # the same reason: said once
        realm = p.failed(refusal('wamp.error.no_such_realm'), 3.0)
        self.assertIn("check c['mq']['realm'] against the router's --realm", realm.text)
        self.assertIn("'buildbot' anonymously:", policy().failed(refusal(), 0.0).text)

    def test_a_refusal_after_a_join_is_reported_again(self):
        p = policy()
        self.assertEqual(p.failed(refusal(), 0.0).level, 'error')
        p.joined(5.0)
        self.assertEqual(p.failed(refusal(), 10.0).level, 'error')

    def test_the_end_of_a_joined_session_is_not_a_failed_attempt(self):
        self.assertIsNone(policy().failed(ApplicationError('wamp.close.transport_lost'), 0))

    def test_joined_says_how_long_it_waited(self):
        p = policy()
        self.assertEqual(p.joined(10.0).text, "ordered-wamp: joined realm 'buildbot' at "
                                              "ws://h:1/ws")
        p.failed(REFUSED, 100.0)
        self.assertEqual(p.joined(165.0).text, "ordered-wamp: joined realm 'buildbot' at "
                                               "ws://h:1/ws after waiting 1m05s")
        self.assertEqual(p.joins, 2)
        # waiting again after having joined: messages wait, not the start-up
        self.assertTrue(p.failed(REFUSED, 200.0).text.endswith(
            "retrying with backoff. Meanwhile produced messages wait in the outbox."))

    def test_left_setup_failed_and_moving_on(self):
        p = policy([URL, 'ws://g:2/ws'])
        self.assertEqual(p.left('wamp.close.normal').text,
                         "ordered-wamp: left the router (wamp.close.normal); reconnecting")
        self.assertEqual(p.setup_failed('boom').text,
                         "ordered-wamp: setting up the session failed (boom); reconnecting")
        self.assertEqual(p.moving_on().text,
                         "ordered-wamp: the router at ws://h:1/ws has no sequencer leading "
                         "(a standby router, or its sequencer stopped); trying ws://g:2/ws next")
        self.assertTrue(policy().moving_on().text.endswith("; retrying with backoff"))

    def test_say_is_a_log_call(self):
        say = policy().left('gone')
        self.assertEqual(say, Say('info', "ordered-wamp: left the router ({reason}); "
                                          "reconnecting", {'reason': 'gone'}))


class Decisions(unittest.TestCase):

    def attempt(self, p, joined=False, then=None):
        p.attempt()
        if joined:
            p.joined(0.0)
            if then:
                then(p)
        else:
            p.failed(REFUSED, 0.0)
        return p.attempt_over(), p.url

    def test_failed_attempts_back_off_and_go_round_the_routers(self):
        p = policy([URL, 'ws://g:2/ws'])
        self.assertEqual([self.attempt(p) for _ in range(5)],
                         [(0.5, 'ws://g:2/ws'), (1.0, URL), (2.0, 'ws://g:2/ws'),
                          (4.0, URL), (8.0, 'ws://g:2/ws')])
        self.assertEqual(p.attempts, 5)

    def test_a_lost_session_is_retried_after_the_first_delay_on_the_next_router(self):
        p = policy([URL, 'ws://g:2/ws'])
        self.attempt(p)
        self.attempt(p)
        self.assertEqual(self.attempt(p, joined=True), (0.5, 'ws://g:2/ws'))
        self.assertEqual(self.attempt(p), (0.5, URL))

    def test_a_session_not_set_up_or_moved_on_counts_as_failed(self):
        for then in (lambda p: p.setup_failed('boom'), lambda p: p.moving_on()):
            p = policy()
            self.attempt(p)
            self.assertEqual(self.attempt(p, joined=True, then=then), (1.0, URL))
