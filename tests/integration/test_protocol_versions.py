"""Masters and the sequencer of other protocol versions (issue 23).

A master of another major version is refused by a real router: it logs one
error naming both versions, the router and what to do, retries quietly with
backoff, and is let in without a restart once the versions agree; the
router logs the refusal once. A master from before versions (it sends none)
is told the router's version. A master of a later minor version, sending an
optional keyword this release does not know, shares the cluster with a
current master: nothing lost, one order."""

from autobahn.twisted.component import Component
from autobahn.wamp.exception import ApplicationError
from twisted.internet import defer
from twisted.internet import reactor
from twisted.internet import threads
from twisted.trial import unittest

from buildbot_mq_ordered import wire
from buildbot_mq_ordered.load.processes import Router
from tests.support.logevents import LogEvents
from tests.support.util import Collector
from tests.support.util import begin_master
from tests.support.util import start_master
from tests.support.util import until
from tests.support.util import with_timeout

MAJOR, MINOR = wire.PROTOCOL
REFUSED_LINE = "sequencer: refused a master"
PER_SIDE = 50        # messages each master produces in the mixed cluster
ATTEMPTS = 4         # refused attempts watched before the versions agree


def router_says(router, text):
    with open(router.log_path, errors='replace') as f:
        return f.read().count(text)


@defer.inlineCallbacks
def scripted(router, main):
    """Run ``main(session)`` in one session of a scripted client (bounded)."""
    comp = Component(transports=[{'url': router.url, 'serializers': ['msgpack'],
                                  'max_retries': 0}],
                     realm=router.realm, main=lambda reactor_, session: main(session))
    yield with_timeout(comp.start(reactor), 60, 'the scripted client')


class ProtocolVersions(unittest.TestCase):
    timeout = 180

    @defer.inlineCallbacks
    def setUp(self):
        self.router = Router()
        self.addCleanup(self.router.cleanup)
        yield threads.deferToThread(self.router.start)

    @defer.inlineCallbacks
    def test_another_major_is_one_error_on_each_side_then_let_in_without_a_restart(self):
        logs = LogEvents(self)
        self.patch(wire, 'PROTOCOL', (MAJOR + 1, 0))
        mq, started = yield begin_master(self, self.router)
        error = yield logs.wait_for("speaks wire protocol")
        self.assertEqual(error, (
            f"ordered-wamp: the router at {self.router.url} speaks wire protocol "
            f"{MAJOR}.{MINOR}; this master speaks {MAJOR + 1}.0: they cannot work together. "
            "Upgrade the older side (see 'Protocol versions' in docs/upgrading.rst). "
            "Retrying quietly with backoff; Buildbot's start-up waits until the master "
            "has joined."))
        yield with_timeout(until(lambda: router_says(self.router, REFUSED_LINE)),
                           30, "the router's refusal line")
        yield with_timeout(until(lambda: mq.link.attempts >= ATTEMPTS), 60,
                           f"{ATTEMPTS} attempts")
        self.assertEqual([t for t in logs.errors() if 'wire protocol' in t], [error])
        self.assertEqual([t for t in logs.texts() if 'setting up the session failed' in t], [])
        self.assertEqual(router_says(self.router, REFUSED_LINE), 1, _log(self.router))
        self.assertEqual(router_says(self.router, f"of protocol {MAJOR + 1}.0: this router "
                                                  f"speaks {MAJOR}.{MINOR}"), 1)
        # the router "upgraded": the same master gets in, and says so
        self.patch(wire, 'PROTOCOL', (MAJOR, MINOR))
        yield with_timeout(started, 60, 'the master to join')
        yield logs.wait_for(f"accepts this master's protocol {MAJOR}.{MINOR} now")
        seen = Collector(mq)
        yield mq.startConsuming(seen, ('versions', None))
        mq.produce(('versions', 'in'), {})
        yield seen.wait_for(1)

    @defer.inlineCallbacks
    def test_a_master_before_versions_is_told_the_routers_version(self):
        refusals = []

        @defer.inlineCallbacks
        def old_master(session):
            for _ in range(3):
                try:
                    yield session.call(wire.INFO)    # no version: before 0.5.0
                except ApplicationError as e:
                    refusals.append(e)
        yield scripted(self.router, old_master)
        self.assertEqual([e.error for e in refusals], [wire.PROTOCOL_MISMATCH] * 3)
        self.assertEqual(refusals[0].kwargs, {'protocol': [MAJOR, MINOR]})
        self.assertIn(f"this router speaks protocol {MAJOR}.{MINOR}", refusals[0].args[0])
        yield with_timeout(until(lambda: router_says(self.router, REFUSED_LINE)), 30,
                           "the router's refusal line")
        self.assertEqual(router_says(self.router, REFUSED_LINE), 1)
        self.assertEqual(router_says(self.router, "of protocol 1 (a release before 0.5.0)"), 1)

    @defer.inlineCallbacks
    def test_a_later_minor_shares_the_cluster_nothing_lost(self):
        current = yield start_master(self, self.router)
        seen = Collector(current)
        yield current.startConsuming(seen, ('versions', None, None))
        events = []

        @defer.inlineCallbacks
        def later_minor(session):
            # what a master of MAJOR.MINOR+1 might send: keywords this release ignores
            yield session.subscribe(lambda stream_id, entries: events.extend(entries),
                                    wire.STREAM)
            info = yield session.call(wire.INFO, protocol=[MAJOR, MINOR + 1],
                                      features=['later'])
            self.assertEqual(info['head'], 0)
            for i in range(PER_SIDE):
                current.produce(('versions', 'current', str(i)), {'i': i})
                data = wire.encode_data({'i': i})
                yield session.call(wire.SUBMIT, 'later-minor', [[i + 1, ['versions', 'later',
                                                                          str(i)], data]],
                                   trace='n+1')
            yield with_timeout(until(lambda: len(events) >= 2 * PER_SIDE), 60,
                               'the later master to see every message')
            answer = yield session.call(wire.REPLAY, 1, 2 * PER_SIDE, trace='n+1')
            events_again = answer[3]
            self.assertEqual([e[:4] for e in events_again], [e[:4] for e in events])
        yield scripted(self.router, later_minor)
        yield seen.wait_for(2 * PER_SIDE)
        self.assertEqual([e[0] for e in events], list(range(1, 2 * PER_SIDE + 1)))
        self.assertEqual(seen.keys, [tuple(e[2]) for e in events])
        for side in ('current', 'later'):
            self.assertEqual([k[2] for k in seen.keys if k[1] == side],
                             [str(i) for i in range(PER_SIDE)])



def _log(router):
    with open(router.log_path, errors='replace') as f:
        return f.read()[-5000:]
