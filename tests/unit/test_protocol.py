"""The wire protocol's handshake (issue 23): the sequencer's gate and what a
master says of a router of another protocol."""

from autobahn.wamp.exception import ApplicationError
from twisted.trial import unittest

from buildbot_mq_ordered import wire
from buildbot_mq_ordered.master.connectpolicy import ConnectPolicy
from buildbot_mq_ordered.router.protocolgate import ProtocolGate
from buildbot_mq_ordered.util.backoff import Backoff

URL = 'ws://127.0.0.1:1/ws'
MAJOR, MINOR = wire.PROTOCOL


class Gate(unittest.TestCase):

    def setUp(self):
        self.lines = []
        self.gate = ProtocolGate(self.lines.append)

    def refused(self, kwargs, authid=None):
        with self.assertRaises(ApplicationError) as e:
            self.gate.check(kwargs, authid)
        return e.exception

    def test_any_minor_of_its_major_goes_on_unlogged(self):
        for minor in (0, MINOR, MINOR + 1, 99):
            self.gate.check({'protocol': [MAJOR, minor]})
        # a later minor's keyword is ignored, not refused
        self.gate.check({'protocol': [MAJOR, MINOR + 1], 'trace': 'x'})
        self.assertEqual(self.lines, [])

    def test_a_master_before_versions_is_refused_naming_both_versions(self):
        e = self.refused({})
        self.assertEqual(e.error, wire.PROTOCOL_MISMATCH)
        self.assertEqual(e.kwargs, {'protocol': list(wire.PROTOCOL)})
        self.assertEqual(e.args[0], f"this router speaks protocol {MAJOR}.{MINOR}; the "
                                    "master offered 1 (a release before 0.5.0)")
        self.assertEqual(self.lines, [
            f"sequencer: refused a master of protocol 1 (a release before 0.5.0): this "
            f"router speaks {MAJOR}.{MINOR}. Upgrade the older side (see 'Protocol "
            "versions' in docs/upgrading.rst); it keeps retrying and is let in once both "
            "speak one major version. Not logged again for masters of that version "
            "without an authid."])

    def test_each_refused_master_is_logged_once(self):
        newer = {'protocol': [MAJOR + 1, 0]}
        for _ in range(3):
            self.refused(newer, 'm1')
            self.refused(newer, 'm2')
            self.refused({}, 'm1')
        self.assertEqual(len(self.lines), 3)
        self.assertIn(f"refused a master 'm1' of protocol {MAJOR + 1}.0", self.lines[0])
        self.assertTrue(self.lines[0].endswith("Not logged again for this master."))

    def test_a_malformed_version_is_malformed(self):
        for bad in (2, [2], ['2', '0'], [2, -1], [2, 2 ** 40], 'x'):
            self.assertEqual(self.refused({'protocol': bad}).error, wire.MALFORMED)
        self.assertEqual(self.lines, [])


def mismatch(theirs):
    return ApplicationError(wire.PROTOCOL_MISMATCH, "no", protocol=list(theirs))


class MasterSays(unittest.TestCase):

    def setUp(self):
        self.policy = ConnectPolicy(URL, 'buildbot', Backoff(0.5, 2.0, 30.0))

    def session(self, failure=None):
        """One attempt: join, then setup fails with ``failure`` or succeeds;
        the lines it logged."""
        p = self.policy
        p.attempt()
        said = [p.joined(0.0)]
        if failure is None:
            said.append(p.set_up())
        else:
            said += [p.setup_failed(failure), p.left('wamp.close.normal')]
        delay = p.attempt_over()
        return [s for s in said if s is not None], delay

    def test_a_router_of_another_major_is_one_error_then_quiet_with_backoff(self):
        said, delay = self.session(mismatch((MAJOR + 1, 0)))
        self.assertEqual([s.level for s in said], ['info', 'error'])
        self.assertEqual(said[1].text, (
            f"ordered-wamp: the router at {URL} speaks wire protocol {MAJOR + 1}.0; this "
            f"master speaks {MAJOR}.{MINOR}: they cannot work together. Upgrade the older "
            "side (see 'Protocol versions' in docs/upgrading.rst). Retrying quietly with "
            "backoff; Buildbot's start-up waits until the master has joined."))
        delays = [delay]
        for _ in range(4):
            said, delay = self.session(mismatch((MAJOR + 1, 0)))
            self.assertEqual(said, [])
            delays.append(delay)
        self.assertEqual(delays, [0.5, 1.0, 2.0, 4.0, 8.0])
        # the router upgraded: one line, and the next leave is told again
        said, delay = self.session()
        self.assertEqual([s.text for s in said], [
            f"ordered-wamp: the router at {URL} accepts this master's protocol "
            f"{MAJOR}.{MINOR} now"])
        self.assertEqual(delay, 0.5)
        self.assertIsNotNone(self.policy.left('wamp.close.normal'))

    def test_a_router_before_versions_refuses_infos_keywords(self):
        old = ApplicationError(wire.MALFORMED, "info takes no arguments")
        said, _ = self.session(old)
        self.assertEqual(said[1].level, 'error')
        self.assertIn("speaks wire protocol 1 (a release before 0.5.0); this master speaks",
                      said[1].text)

    def test_any_other_setup_failure_is_told_each_time(self):
        for _ in range(2):
            said, _ = self.session(RuntimeError('boom'))
            self.assertEqual([s.text for s in said[1:]], [
                "ordered-wamp: setting up the session failed (boom); reconnecting",
                "ordered-wamp: left the router (wamp.close.normal); reconnecting"])
