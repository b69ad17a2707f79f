"""Several routers on one PostgreSQL journal: started together, which one
leads, one WAMP call to one of them, the journal checked whole; a router
frozen (its process group stopped) or reaching the journal through a proxy;
what the journal says of a fault run."""

import collections
import os
import signal
import time

from autobahn.twisted.component import Component
from autobahn.wamp.exception import ApplicationError
from twisted.internet import defer
from twisted.internet import reactor
from twisted.internet import task

from buildbot_mq_ordered import wire
from buildbot_mq_ordered.load.processes import Router
from buildbot_mq_ordered.router.leadership import LEASE_SECONDS
from buildbot_mq_ordered.router.leadership import RENEW_EVERY
from buildbot_mq_ordered.wire import decode_data
from tests.support.pgutil import PG_URL
from tests.support.pgutil import journal_rows
from tests.support.tcpproxy import CuttableProxy
from tests.support.util import batched_timers_fired

CALL_TIMEOUT = 10        # one WAMP call, connection included


LEAD_TIMEOUT = 20        # a started router set leads


# a leader gone: its lease runs out, a candidate's next try takes it
FAILOVER_BOUND = LEASE_SECONDS + 2 * RENEW_EVERY + 3

# a leader stalled (frozen, its database link hung): its last renewal came
# before the fault, so its lease ends LEASE_SECONDS after the fault at the
# latest and a candidate's next try, RENEW_EVERY on, takes it; 2 s more for
# reading the journal and registering on a busy machine
LEADS_BOUND = LEASE_SECONDS + RENEW_EVERY + 2
# issue 21's target: from the fault to the first message the new leader
# sequenced (masters must find it too)
FIRST_SEQUENCED_BOUND = 7.0


@defer.inlineCallbacks
def call(router, uri, *args, **kwargs):
    """('ok', result) or ('error', error URI) of one call on a router."""
    out = []

    @defer.inlineCallbacks
    def main(reactor_, session):
        try:
            out.append(('ok', (yield session.call(uri, *args, **kwargs))))
        except ApplicationError as e:
            out.append(('error', e.error))

    comp = Component(transports=[{'url': router.url, 'serializers': ['msgpack'],
                                  'max_retries': 0}], realm=router.realm, main=main)
    d = comp.start(reactor)
    timer = reactor.callLater(CALL_TIMEOUT, d.cancel)
    try:
        yield d
    except Exception as e:
        out.append(('error', f'no answer: {e!r}'))
    finally:
        if timer.active():
            timer.cancel()
    yield batched_timers_fired()
    return out[0] if out else ('error', 'no answer')


@defer.inlineCallbacks
def poll(condition, timeout, what, interval=0.2):
    """Until condition() (a Deferred of a truth value) holds; its last
    value. Bounded: fails naming what was awaited."""
    deadline = time.monotonic() + timeout
    while True:
        value = yield condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout}s: {what}")
        yield task.deferLater(reactor, interval, lambda: None)


class RouterSet:
    """A TestCase mixin: routers on a journal, and which one leads."""

    def routers(self, *urls):
        """Routers on these journal URLs, started together."""
        routers = [Router(extra_args=['--journal', url]) for url in urls]
        for r in routers:
            self.addCleanup(r.cleanup)
        return Router.start_together(routers)

    @defer.inlineCallbacks
    def leader_of(self, routers):
        """The one router that answers info, with its info; the others have
        no sequencer procedure at all."""
        @defer.inlineCallbacks
        def leading():
            answers = yield defer.gatherResults([call(r, wire.INFO, **wire.handshake()) for r in routers])
            leaders = [(r, a[1]) for r, a in zip(routers, answers) if a[0] == 'ok']
            if len(leaders) == 1:
                others = [a for a in answers if a[0] != 'ok']
                self.assertEqual({a[1] for a in others},
                                 {'wamp.error.no_such_procedure'} if others else set())
                return leaders[0]
            self.assertLessEqual(len(leaders), 1, "two routers lead")
            return None
        return (yield poll(leading, LEAD_TIMEOUT, "exactly one router leads"))

    def assert_journal_whole(self, url):
        """Positions 1..N, each once; per key 1..n in position order."""
        rows = journal_rows(url, "SELECT pos, seq, key FROM entries ORDER BY pos")
        self.assertEqual([r[0] for r in rows], list(range(1, len(rows) + 1)))
        seqs = {}
        for _, seq, key in rows:
            seqs[key] = seqs.get(key, 0) + 1
            self.assertEqual(seq, seqs[key])
        return rows


def freeze(router):
    """A hung host: the router's whole process group stopped (the router
    command, Crossbar's controller and worker); its sockets stay open."""
    os.killpg(router.proc.pid, signal.SIGSTOP)


# tries at catching each moment of a commit, before the fault stays anyway
MID_COMMIT_TRIES = 300
_LEASE_HELD = ("SELECT count(*) FROM pg_locks l JOIN pg_stat_activity a USING (pid) "
               "WHERE l.granted AND l.relation = 'lease'::regclass "
               "AND l.mode = 'RowShareLock'")
# the worst moments for a take-over first: a backend of the leader holds the
# lease row FOR SHARE (its fencing check) and waits for the rest of a
# pipelined insert, when the server's idle-in-transaction timeout is not
# armed (what issue 21 met); else any moment the lease row is held so
COMMIT_MOMENTS = (
    ('pipelined insert', _LEASE_HELD + " AND a.state = 'idle in transaction' "
                                       "AND a.query ILIKE 'insert%'"),
    ('lease row held', _LEASE_HELD),
)


def during_a_commit(fault, undo, url):
    """fault() at a moment when the leader is in a commit (``COMMIT_MOMENTS``,
    in order), else undo() at once and try again. Which moment caught it,
    or None (bounded: then the fault stays where it fell)."""
    import psycopg
    with psycopg.connect(url, autocommit=True, connect_timeout=10) as db:
        for name, sql in COMMIT_MOMENTS:
            for _ in range(MID_COMMIT_TRIES):
                fault()
                if db.execute(sql).fetchone()[0]:
                    return name
                undo()
    fault()
    return None


def thaw(router):
    try:
        os.killpg(router.proc.pid, signal.SIGCONT)
    except ProcessLookupError:
        pass


def through_proxy(testcase, url):
    """(url through a proxy, the proxy): the same database, reached through
    a proxy on loopback that the test can cut or hang."""
    host_port = PG_URL.split('@', 1)[1].split('/', 1)[0]
    proxy = CuttableProxy(int(host_port.rsplit(':', 1)[1]))
    testcase.addCleanup(proxy.close)
    return url.replace(f'@{host_port}/', f'@127.0.0.1:{proxy.port}/'), proxy


def written_at(url, pos):
    """When the entry at pos was written (time.time()), or None."""
    rows = journal_rows(url, f"SELECT ts FROM entries WHERE pos = {int(pos)}")
    return rows[0][0] if rows else None


def journaled_twice(url):
    """Messages (a load node's producer and index) in the journal more
    than once: a deposed leader's commit, or numbering given twice."""
    rows = journal_rows(url, "SELECT data FROM entries")
    seen = collections.Counter()
    for (data,) in rows:
        message = decode_data(bytes(data))
        seen[(message['p'], message['i'])] += 1
    return sum(n - 1 for n in seen.values())


def journal_gaps(url):
    """Positions missing from 1..max, and positions whose per-key number is
    not the next of its key: 0 and 0 for a whole journal."""
    rows = journal_rows(url, "SELECT pos, seq, key FROM entries ORDER BY pos")
    missing = (rows[-1][0] - len(rows)) if rows else 0
    seqs = {}
    misnumbered = 0
    for _, seq, key in rows:
        seqs[key] = seqs.get(key, 0) + 1
        misnumbered += seq != seqs[key]
        seqs[key] = seq
    return missing, misnumbered
