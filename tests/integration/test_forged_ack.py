"""A master notices an acknowledgement beyond what it sent.

Issue 21: on a router without ``--secret-file`` a client that submitted
with another master's producer id and producer_seq 2**62 made that
master's later messages vanish (the sequencer drops them as duplicates),
and the master logged nothing: its outbox took the forger's mark as its
own. The loss remains on an open router (docs/security.rst); the master
now says so, once, naming its producer id and the mark.
(test_producer_binding: with ``--secret-file`` the forgery does nothing.)"""

from autobahn.twisted.component import Component
from twisted.internet import defer
from twisted.internet import reactor
from twisted.trial import unittest

from buildbot_mq_ordered import wire
from tests.support.router import shared_router
from tests.support.util import Collector
from tests.support.util import start_master
from tests.support.util import until
from tests.support.util import with_timeout

FORGED = 2 ** 62


class ForgedAcknowledgement(unittest.TestCase):
    timeout = 120

    @defer.inlineCallbacks
    def test_the_victim_logs_the_forged_mark_once(self):
        router = shared_router()
        victim = yield start_master(self, router)
        watcher = yield start_master(self, router)
        seen = Collector(watcher)
        yield watcher.startConsuming(seen, ('forged-ack', None))
        victim.produce(('forged-ack', 'before'), {})
        yield seen.wait_for(1)
        answers = []

        @defer.inlineCallbacks
        def forge(reactor_, session):
            # anonymous, claiming the victim's producer id
            answers.append((yield session.call(
                wire.SUBMIT, victim.producer_id, [[FORGED, ['forged-ack', 'forged'], b'\xc0']])))
        comp = Component(transports=[{'url': router.url, 'serializers': ['msgpack'],
                                      'max_retries': 0}],
                         realm=router.realm, main=forge)
        yield with_timeout(comp.start(reactor), what='the forging client')
        self.assertEqual(answers[0][0], FORGED)
        for i in range(20):
            victim.produce(('forged-ack', 'after'), {'i': i})
        yield with_timeout(until(lambda: not len(victim.outbox)), what="the victim's acks")
        # what the sequencer sequenced before this marker was delivered before it
        watcher.produce(('forged-ack', 'marker'), {})
        yield seen.wait_for(3)
        self.assertEqual([k[1] for k in seen.keys], ['before', 'forged', 'marker'])
        errors = [str(e.value) for e in self.flushLoggedErrors(RuntimeError)]
        self.assertEqual(len(errors), 1, errors)
        self.assertIn(f"the sequencer acknowledged producer id {victim.producer_id} up to "
                      f"producer sequence number {FORGED}, but this master sent only up to ",
                      errors[0])
        self.assertIn("--secret-file", errors[0])
