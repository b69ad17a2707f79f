"""Only masters may speak: WAMP-CRA, roles, TLS - against a real router."""

import os
import subprocess
import sys
import tempfile

from autobahn.twisted.component import Component
from autobahn.wamp.exception import ApplicationError
from autobahn.wamp.types import PublishOptions
from twisted.internet import defer
from twisted.internet import reactor
from twisted.trial import unittest

from buildbot_mq_ordered import wire
from buildbot_mq_ordered.master.connectpolicy import REFUSED
from buildbot_mq_ordered.router.nodeconfig import auth_config
from buildbot_mq_ordered.router.nodeconfig import parse_secret_file
from tests.support.contract import ContractTests
from tests.support.logevents import LogEvents
from tests.support.router import SECRETS
from tests.support.router import router_of_kind as _router
from tests.support.util import Collector
from tests.support.util import start_master
from tests.support.util import until
from tests.support.util import with_timeout


def _client(router, main, authentication=None):
    """A plain autobahn client (not a master) running main(reactor, session)."""
    comp = Component(transports=[{'url': router.url, 'serializers': ['json'],
                                  'max_retries': 0}],
                     realm=router.realm, main=main, authentication=authentication or {})
    left = []
    comp.on('leave', lambda session, details: left.append(details.reason))
    closed = defer.Deferred()
    comp.on('disconnect', lambda session, was_clean: closed.called or closed.callback(None))
    comp.closed = closed
    return comp, left


class SecretFile(unittest.TestCase):

    def test_parses_pairs_comments_and_blank_lines(self):
        self.assertEqual(parse_secret_file(SECRETS),
                         [('master1', 's3cret-one'), ('master2', 's3cret-two')])

    def test_malformed_lines_name_the_line(self):
        for text, line in [("a b\nonlyone\n", 2), ("a b c\n", 1), ("a x\na y\n", 2),
                           ("bad/id x\n", 1)]:
            with self.assertRaises(ValueError) as e:
                parse_secret_file(text, name='secrets')
            self.assertIn(f'line {line}', str(e.exception))

    def test_empty_file_is_an_error(self):
        self.assertRaises(ValueError, parse_secret_file, "# nothing\n")

    def test_secrets_never_in_the_written_config(self):
        cfg = auth_config(['master1'])
        self.assertNotIn('s3cret', repr(cfg))
        self.assertNotIn('anonymous', cfg)
        self.assertEqual(cfg['wampcra']['users']['master1']['role'], 'master')

    def test_router_command_refuses_a_malformed_secret_file(self):
        tmp = tempfile.mkdtemp(prefix='bmo-sec-')
        path = os.path.join(tmp, 'secrets')
        with open(path, 'w') as f:
            f.write("master1 good\nmaster2\n")
        proc = subprocess.run(
            [sys.executable, '-m', 'buildbot_mq_ordered.cli', 'router', '--port', '1',
             '--cbdir', tmp, '--secret-file', path],
            capture_output=True, text=True, timeout=60)
        self.assertNotEqual(proc.returncode, 0)
        self.assertIn('line 2', proc.stderr)
        self.assertNotIn('good', proc.stderr)


class Authentication(unittest.TestCase):
    timeout = 120

    @defer.inlineCallbacks
    def test_anonymous_join_refused(self):
        router = _router('auth')
        joined = []
        comp, left = _client(router, lambda r, s: joined.append(s))
        yield with_timeout(comp.start(reactor).addErrback(lambda f: None))
        yield with_timeout(comp.closed, what='the refused connection to close')
        self.assertEqual(joined, [])
        self.assertTrue(left and left[0] in REFUSED, left)

    @defer.inlineCallbacks
    def test_wrong_secret_refused_logged_once_and_retried(self):
        router = _router('auth')
        logs = LogEvents(self)
        mq = yield start_master(self, router, authid='master1', secret='wrong')
        # retried with backoff: wait for a few refused attempts
        yield with_timeout(until(
            lambda: mq.link is not None and mq.link.attempts >= 3),
            what='three connection attempts')
        self.assertFalse(mq.follower.started)
        errors = logs.errors()
        self.assertEqual(len(errors), 1, logs.texts())
        message = errors[0]
        self.assertIn("refused", message)
        self.assertIn("'master1'", message)
        self.assertNotIn('wrong', message)

    @defer.inlineCallbacks
    def test_right_secrets_work(self):
        router = _router('auth')
        tmp = tempfile.mkdtemp(prefix='bmo-sec-')
        secret_file = os.path.join(tmp, 'master2.secret')
        with open(secret_file, 'w') as f:
            f.write('s3cret-two\n')
        a = yield start_master(self, router, authid='master1', secret='s3cret-one')
        b = yield start_master(self, router, authid='master2', secret_file=secret_file)
        c = Collector(b)
        yield b.startConsuming(c, ('auth', None))
        a.produce(('auth', 'x'), {'ok': 1})
        got = yield c.wait_for(1)
        self.assertEqual(got[0][:2], (('auth', 'x'), {'ok': 1}))


class Authorization(unittest.TestCase):
    timeout = 120

    @defer.inlineCallbacks
    def test_master_cannot_publish_stream_or_register_sequencer(self):
        router = _router('auth')
        watcher = yield start_master(self, router, authid='master2', secret='s3cret-two')
        seen = Collector(watcher)
        yield watcher.startConsuming(seen, (None, None))
        outcomes = {}

        @defer.inlineCallbacks
        def attack(reactor_, session):
            forged = [[watcher.follower.next_pos, 1, ['forged', 'x'], '{}']]
            for name, action in [
                    ('publish', lambda: session.publish(
                        wire.STREAM, forged, options=PublishOptions(acknowledge=True))),
                    ('register submit', lambda: session.register(lambda *a: None, wire.SUBMIT)),
                    ('register replay', lambda: session.register(lambda *a: None, wire.REPLAY)),
                    ('register free', lambda: session.register(
                        lambda *a: None, wire.PREFIX + 'submit2')),
                    ('register other', lambda: session.register(lambda: None, 'com.x.y'))]:
                try:
                    yield action()
                    outcomes[name] = 'allowed'
                except ApplicationError as e:
                    outcomes[name] = e.error
            # a legitimate call works for the same identity
            outcomes['replay call'] = len((yield session.call(wire.REPLAY, 0, 0)))
        comp, left = _client(router, attack, authentication={
            'wampcra': {'authid': 'master1', 'secret': 's3cret-one'}})
        yield with_timeout(comp.start(reactor))
        yield with_timeout(comp.closed, what='the client connection to close')
        # the router answers "already exists" before it checks the role for
        # the sequencer's live procedures; either way the master is refused,
        # and for a free name in the sequencer's namespace the role says no
        refused = {'wamp.error.not_authorized', 'wamp.error.procedure_already_exists'}
        self.assertIn(outcomes.pop('register submit'), refused)
        self.assertIn(outcomes.pop('register replay'), refused)
        self.assertEqual(outcomes, {
            'publish': 'wamp.error.not_authorized',
            'register free': 'wamp.error.not_authorized',
            'register other': 'wamp.error.not_authorized',
            'replay call': 4})
        # a real message after the attack arrives, the forged one never did
        a = yield start_master(self, router, authid='master1', secret='s3cret-one')
        a.produce(('real', 'x'), {})
        yield seen.wait_for(1)
        self.assertEqual(seen.keys, [('real', 'x')])
        self.assertEqual(watcher.stats['foreign_events'], 0)


class ContractOverTLS(ContractTests, unittest.TestCase):
    """The whole MQ contract over wss:// with a CA made for the test."""

    def make_router(self):
        return _router('tls')

    def master_options(self):
        return {'ca_file': self.router.ca_file}

    @defer.inlineCallbacks
    def test_connection_is_tls(self):
        from twisted.internet.interfaces import ISSLTransport
        yield self.a.startConsuming(lambda *a: None, ('tls',))  # joined once this fires
        self.assertTrue(self.router.url.startswith('wss://'))
        self.assertTrue(ISSLTransport.providedBy(self.a.session._transport.transport))
