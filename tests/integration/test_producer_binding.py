"""Producer ids are bound to who the router says a master is.

Issue 10: any client that may call submit could send another master's
producer id with producer_seq 2**62; that master's next messages were then
acknowledged as resubmissions and delivered by nobody, with no error. On a
router with ``--secret-file`` the sequencer keys marks by the caller's
authid as the router discloses it."""

from autobahn.twisted.component import Component
from twisted.internet import defer
from twisted.internet import reactor
from twisted.trial import unittest

from buildbot_mq_ordered import wire
from tests.support.router import router_of_kind
from tests.support.util import Collector
from tests.support.util import start_master
from tests.support.util import until
from tests.support.util import with_timeout


class ForgedProducerId(unittest.TestCase):
    timeout = 120

    @defer.inlineCallbacks
    def test_another_master_cannot_advance_my_mark(self):
        router = router_of_kind('auth')
        victim = yield start_master(self, router, authid='master1', secret='s3cret-one')
        watcher = yield start_master(self, router, authid='master2', secret='s3cret-two')
        seen = Collector(watcher)
        yield watcher.startConsuming(seen, ('bound', None))
        victim.produce(('bound', 'before'), {})
        yield seen.wait_for(1)
        answers = []

        @defer.inlineCallbacks
        def forge(reactor_, session):
            # authenticated as master2, claiming master1's producer id
            answers.append((yield session.call(
                wire.SUBMIT, victim.producer_id, [[2 ** 62, ['bound', 'forged'], b'\xc0']])))
        comp = Component(transports=[{'url': router.url, 'serializers': ['msgpack'],
                                      'max_retries': 0}],
                         realm=router.realm, main=forge,
                         authentication={'wampcra': {'authid': 'master2',
                                                     'secret': 's3cret-two'}})
        yield with_timeout(comp.start(reactor), what='the forging client')
        self.assertEqual(answers[0][0], 2 ** 62)   # sequenced, as master2's own
        for i in range(20):
            victim.produce(('bound', 'after'), {'i': i})
        yield seen.wait_for(1 + 1 + 20)
        self.assertEqual([k for k in seen.keys if k[1] == 'after'], [('bound', 'after')] * 20)
        self.assertEqual([d['i'] for d in seen.data if isinstance(d, dict) and 'i' in d],
                         list(range(20)))
        # acknowledged too (its answer may come after the watcher's events)
        yield with_timeout(until(lambda: not len(victim.outbox)), what="the victim's acks")
