"""The database stalling key lookups never freezes the router (issue 21):
a router on a PostgreSQL journal, two masters in processes of their own
producing a new routing key with every message (each one is looked up in
the journal: no cache holds it), while another session holds the key
counters' table locked for STALL seconds. Meanwhile the router keeps
routing: a fresh WAMP session joins and its ``role`` call is answered
within a second, and ``/healthz`` answers within a second (healthy or not);
afterwards nothing is lost, nothing delivered twice, one order.

Before issue 21's fixes ``journal.last_seq`` ran on the router's reactor:
the router answered nothing until the lock was released."""

import time

from twisted.internet import defer
from twisted.internet import reactor
from twisted.internet import task
from twisted.internet import threads
from twisted.trial import unittest

from buildbot_mq_ordered.load.processes import Router
from buildbot_mq_ordered.load.processes import free_port
from tests.support import routerlog
from tests.support.faultload import MastersUnderFault
from tests.support.figures import report
from tests.support.ha import RouterSet
from tests.support.ha import journal_gaps
from tests.support.ha import poll
from tests.support.pgstall import KeyseqLock
from tests.support.pgstall import lookups_waiting
from tests.support.pgutil import fresh_database
from tests.support.promises import Promises
from tests.support.rolewatch import timed_role
from tests.support.util import http_get

STALL = 8.0            # seconds the key counters stay locked
MASTERS, RATE, PER_MASTER = 2, 40, 560     # 14 s of production: the stall within
ANSWER_BOUND = 1.0     # a join, a role call, /healthz: each within this
PROBE_EVERY = 0.5
MAX_PROBES = 40
LOOKUP_SEEN_TIMEOUT = 5


@defer.inlineCallbacks
def timed_healthz(url):
    """(status, seconds) of one GET of /healthz."""
    t0 = time.monotonic()
    status, _ = yield threads.deferToThread(http_get, url)
    return status, time.monotonic() - t0


class KeyLookupsStall(RouterSet, unittest.TestCase):
    timeout = 240

    @defer.inlineCallbacks
    def test_the_router_routes_while_key_lookups_wait_on_the_database(self):
        url = fresh_database(self)
        port = free_port()
        router = Router(extra_args=['--journal', url, '--metrics-port', str(port)])
        self.addCleanup(router.cleanup)
        router.start()
        yield self.leader_of([router])
        stall = KeyseqLock(url)
        self.addCleanup(stall.unlock)
        run = MastersUnderFault(self, [router], PER_MASTER, RATE, masters=MASTERS,
                                distinct_keys=10 ** 6)
        probing = []

        def lock():
            stall.lock()
            reactor.callFromThread(lambda: probing.append(
                self.probe(url, router, f'http://127.0.0.1:{port}/healthz', run)))
        yield run.run(start_after=2 * MASTERS * RATE,
                      steps=[(0, 'lock', lock), (STALL, 'unlock', stall.unlock)])
        self.assertEqual(len(probing), 1, "the stall never began")
        seen, probes = yield probing[0]
        verdict = run.verdict()
        figures = dict(run.figures(verdict), **self.probe_figures(seen, probes),
                       terms=routerlog.terms(router))
        report('stall-key-lookups', **figures)
        routerlog.keep(router, 'stall-key-lookups-router')
        self.check(verdict, figures, url)

    @defer.inlineCallbacks
    def probe(self, url, router, healthz, run):
        """(whether a key lookup was seen waiting, [(join s, role answered s,
        /healthz status, /healthz s)]) while the stall lasts."""
        try:
            yield poll(lambda: threads.deferToThread(lookups_waiting, url),
                       LOOKUP_SEEN_TIMEOUT, "a key lookup waiting on the locked keyseq")
            seen = True
        except AssertionError:
            seen = False
        probes = []
        while 'unlock' not in run.at and len(probes) < MAX_PROBES:
            began = time.time() - run.at['lock']
            (joined, answered, _), (status, took) = yield defer.gatherResults(
                [timed_role(router), timed_healthz(healthz)])
            probes.append((round(began, 2), joined, answered, status, took))
            yield task.deferLater(reactor, PROBE_EVERY, lambda: None)
        return seen, probes

    def probe_figures(self, seen, probes):
        def worst(values):
            return None if None in values or not values else round(max(values), 2)
        return {'lookup_seen_waiting': seen, 'probes': len(probes),
                'join_max_s': worst([p[1] for p in probes]),
                'role_max_s': worst([p[2] for p in probes]),
                'healthz_max_s': worst([p[4] for p in probes]),
                'healthz_statuses': sorted({p[3] for p in probes}),
                # (s after the lock, join s, role s, /healthz status, /healthz s)
                'probe_list': [[None if x is None else round(x, 2) for x in p]
                               for p in probes]}

    def check(self, verdict, figures, url):
        promises = Promises()
        promises.check(figures['lookup_seen_waiting'],
                       "no key lookup was seen waiting on the locked table: nothing stalled")
        promises.check(figures['probes'] > 0, "no probe during the stall")
        promises.within("a fresh session joins during the stall", figures['join_max_s'],
                        ANSWER_BOUND)
        promises.within("role answers during the stall", figures['role_max_s'], ANSWER_BOUND)
        promises.within("/healthz answers during the stall", figures['healthz_max_s'],
                        ANSWER_BOUND)
        promises.check(not verdict.problems, "the masters' deliveries: "
                       + "; ".join(verdict.problems))
        missing, misnumbered = journal_gaps(url)
        promises.check((missing, misnumbered) == (0, 0),
                       f"the journal: {missing} positions missing, {misnumbered} "
                       "per-key numbers out of turn")
        promises.assert_kept(self)
