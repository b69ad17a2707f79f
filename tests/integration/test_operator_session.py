"""What a master says while it cannot join, and that it stops in every state
of its router connection - masters in this process against real routers."""

import json
import os
import socket
import subprocess
import sys
import time

from twisted.internet import defer
from twisted.internet import error
from twisted.internet import task
from twisted.logger import LogLevel
from twisted.trial import unittest

from buildbot_mq_ordered.load.processes import Router
from buildbot_mq_ordered.load.processes import free_port
from buildbot_mq_ordered.master import link as session
from buildbot_mq_ordered.router.nodeconfig import node_config
from buildbot_mq_ordered.util.backoff import Backoff
from tests.support.logevents import LogEvents
from tests.support.router import router_of_kind
from tests.support.router import shared_router
from tests.support.util import start_master
from tests.support.util import stop_master
from tests.support.util import until
from tests.support.util import with_timeout

# a stopped link is done within this (the connecting state: see STOP_TIMEOUT)
PROMPT = 3


def attempts(mq):
    return mq.link.attempts if mq.link else 0


@defer.inlineCallbacks
def timed_stop(testcase, mq):
    started = time.monotonic()
    yield with_timeout(stop_master(mq), 30, 'the master to stop')
    return time.monotonic() - started


class RolelessRouter(Router):
    """A router whose realm lacks the role its authenticator gives masters
    (a misconfigured Crossbar node): masters are refused with no_such_role."""

    def start_async(self):
        os.makedirs(self.cbdir, exist_ok=True)
        config = node_config(self.port, realm=self.realm, cbdir=self.cbdir)
        realm = config['workers'][0]['realms'][0]
        realm['roles'] = [r for r in realm['roles'] if r['name'] != 'master']
        path = os.path.join(self.cbdir, 'config.json')
        with open(path, 'w') as f:
            json.dump(config, f)
        with open(self.log_path, 'ab') as log:
            self.proc = subprocess.Popen(
                [sys.executable, '-c', 'import sys, crossbar; sys.exit(crossbar.run())',
                 'start', '--cbdir', self.cbdir, '--config', path],
                stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        return self


class Refused(unittest.TestCase):
    timeout = 120

    @defer.inlineCallbacks
    def check_refused(self, router, must, must_not=(), **options):
        logs = LogEvents(self)
        mq = yield start_master(self, router, **options)
        # retried with backoff: a few refused attempts, still one error
        yield with_timeout(until(lambda: attempts(mq) >= 3), what='three attempts')
        self.assertFalse(mq.follower.started)
        errors = logs.errors()
        self.assertEqual(len(errors), 1, logs.texts())
        for text in (router.url, f"realm '{options.get('realm', router.realm)}'") + must:
            self.assertIn(text, errors[0])
        for text in must_not:
            self.assertNotIn(text, errors[0])
        # no traceback: an error-level event, not a logged failure
        self.assertNotIn('log_failure', logs.events[[e['log_level'] for e in
                                                     logs.events].index(LogLevel.error)])
        # and it stops at once, refused and waiting to retry
        took = yield timed_stop(self, mq)
        self.assertLess(took, PROMPT)
        return errors[0]

    def test_no_such_realm_names_the_realm_setting(self):
        return self.check_refused(
            shared_router(), realm='Buildbot',
            must=('wamp.error.no_such_realm', 'no realm "Buildbot" exists',
                  "c['mq']['realm']", "--realm"),
            must_not=('authid', 'secret'))

    def test_anonymous_master_on_an_authenticating_router(self):
        return self.check_refused(
            router_of_kind('auth'),
            must=('anonymously', "c['mq']['authid']"), must_not=("c['mq']['realm']",))

    def test_wrong_secret_names_the_credentials(self):
        return self.check_refused(
            router_of_kind('auth'), authid='master1', secret='wrong',
            must=("as 'master1'", "c['mq']['authid'] and its secret", '--secret-file'),
            must_not=('wrong', "c['mq']['realm']"))

    @defer.inlineCallbacks
    def test_no_such_role_names_the_router_configuration(self):
        router = RolelessRouter()
        self.addCleanup(router.cleanup)
        router.start()
        yield self.check_refused(
            router, must=('no_such_role', "router's configuration"),
            must_not=("c['mq']['realm']", 'secret'))


class Waiting(unittest.TestCase):
    timeout = 120

    @defer.inlineCallbacks
    def test_says_it_waits_for_the_router_and_stops_at_once(self):
        logs = LogEvents(self)
        port = free_port()   # nobody listens
        router = type('NoRouter', (), {'url': f'ws://127.0.0.1:{port}/ws',
                                       'realm': 'buildbot'})()
        mq = yield start_master(self, router)
        text = yield logs.wait_for('waiting for the router')
        self.assertEqual(
            text, f"ordered-wamp: waiting for the router at ws://127.0.0.1:{port}/ws, "
                  "realm 'buildbot' (Connection was refused by other side: 111: "
                  "Connection refused); retrying with backoff. Buildbot's start-up "
                  "waits until the master has joined.")
        self.assertIn(f"ordered-wamp: connecting to the router at ws://127.0.0.1:{port}/ws, "
                      "realm 'buildbot'", logs.texts())
        yield with_timeout(until(lambda: attempts(mq) >= 3), what='three attempts')
        self.assertEqual(logs.errors(), [])
        # autobahn's own "Connection failed: ..." lines are not repeated
        took = yield timed_stop(self, mq)
        self.assertLess(took, PROMPT)

    def test_reminders_at_growing_intervals(self):
        clock = task.Clock()
        link = session.RouterLink('ws://h:1/ws', 'buildbot', None, None, Backoff(1.0, 1.5, 300.0),
                                  reactor=clock)
        logs = LogEvents(self)
        said = []
        for t in range(0, 700, 5):
            clock.advance(5 if t else 0)
            before = len(logs.texts())
            link._connect_failed(None, error.ConnectionRefusedError())
            if len(logs.texts()) > before:
                said.append(t)
        self.assertEqual(said, [0, 10, 20, 40, 80, 160, 320, 640])
        self.assertIn("still not joined realm 'buildbot' at ws://h:1/ws after 5m20s",
                      logs.texts()[-2])

    def test_shutdown_before_joining_tells_the_owner_once(self):
        # the reactor's 'before shutdown' trigger: a start-up waiting for the
        # router is told to give up so that Buildbot can stop the master
        port = free_port()
        told = []
        link = session.RouterLink(f'ws://127.0.0.1:{port}/ws', 'buildbot', None, None,
                                  Backoff(0.2, 1.5, 1.0), on_shutdown=lambda: told.append(1))
        link.start()
        self.assertIsNotNone(link._shutdown_trigger)
        d = link._reactor_stopping()
        self.assertEqual(told, [1])
        self.assertIsNone(link._shutdown_trigger)
        return with_timeout(d, PROMPT, 'the link to stop')


class Silent:
    """A TCP port that accepts and never answers: a connection attempt stays
    under way (the WebSocket handshake) until autobahn's timeout."""

    def __init__(self, testcase):
        self.sock = socket.socket()
        self.sock.bind(('127.0.0.1', 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.url = f'ws://127.0.0.1:{self.port}/ws'
        self.realm = 'buildbot'
        testcase.addCleanup(self.sock.close)


class StopsInEveryState(unittest.TestCase):
    timeout = 120

    @defer.inlineCallbacks
    def test_joined(self):
        mq = yield start_master(self, shared_router())
        yield with_timeout(mq.startConsuming(lambda *a: None, ('x',)), what='the join')
        took = yield timed_stop(self, mq)
        self.assertLess(took, PROMPT)

    @defer.inlineCallbacks
    def test_connecting(self):
        silent = Silent(self)
        mq = yield start_master(self, silent)
        yield with_timeout(until(lambda: attempts(mq) >= 1), what='a connection attempt')
        took = yield timed_stop(self, mq)
        # the attempt under way is let run out (autobahn's handshake timeout)
        self.assertLess(took, session.STOP_TIMEOUT + 1)

    @defer.inlineCallbacks
    def test_router_gone(self):
        router = Router()
        self.addCleanup(router.cleanup)
        router.start()
        logs = LogEvents(self)
        mq = yield start_master(self, router)
        yield with_timeout(mq.startConsuming(lambda *a: None, ('x',)), what='the join')
        router.kill()
        yield logs.wait_for('waiting for the router')
        self.assertIn('Meanwhile produced messages wait in the outbox',
                      [t for t in logs.texts() if 'waiting for' in t][0])
        took = yield timed_stop(self, mq)
        self.assertLess(took, PROMPT)
