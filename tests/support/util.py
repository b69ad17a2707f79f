"""Helpers for integration tests: masters (OrderedWampMQ instances) in this
process, and consumers whose arrivals can be awaited with a bound."""

import urllib.error
import urllib.request

from twisted.application import service as ts
from twisted.internet import defer
from twisted.internet import reactor

from buildbot_mq_ordered.load.verify import check_records
from buildbot_mq_ordered.master.mq import OrderedWampMQ

TIMEOUT = 30

# routing keys and data that must round-trip exactly (wire and MQ tests)
ODD_KEYS = [
    ('a.b', 'c'),
    ('#', '*'),
    ('with space', ''),
    ('', '', ''),
    (),
    ('x' * 200,),
    ('ünïcødé', '日本', '🙂'),
    ('a/b', 'c\\d', '"q"', '\n\t'),
]
ODD_DATA = [
    {'nested': {'list': [1, 2.5, None, 'x', {'deep': [True, False]}]}},
    [],
    {},
    None,
    0,
    -1,
    1e-300,
    1.7976931348623157e308,
    0.1 + 0.2,
    'ünïcødé 🙂',
    'x' * 200,
    {'': '', 'a.b': '#', '*': ' '},
    [[[[[]]]]],
    '"\\\n',
]


class FakeConfig:
    def __init__(self, mq):
        self.mq = mq


def mq_config(router, **options):
    mq = {'type': 'ordered-wamp', 'router_url': router.url, 'realm': router.realm,
          'initial_retry_delay': 0.2, 'max_retry_delay': 1.0}
    mq.update(options)
    return mq


@defer.inlineCallbacks
def start_master(testcase, router, **options):
    """An OrderedWampMQ under a parent service, started (it joined), stopped
    at test cleanup."""
    mq, started = yield begin_master(testcase, router, **options)
    yield started
    return mq


@defer.inlineCallbacks
def begin_master(testcase, router, **options):
    """(mq, a Deferred of its start): an OrderedWampMQ whose start, which
    waits until it joined, is under way; stopped at test cleanup."""
    parent = ts.MultiService()
    mq = OrderedWampMQ()
    yield mq.setServiceParent(parent)
    yield mq.reconfigServiceWithBuildbotConfig(FakeConfig(mq_config(router, **options)))
    started = defer.maybeDeferred(parent.startService)
    testcase.addCleanup(stop_master, mq)
    return mq, started


def stop_master(mq):
    if not mq.running:
        return defer.succeed(None)
    return defer.maybeDeferred(mq.parent.stopService)


def with_timeout(d, timeout=TIMEOUT, what='event'):
    """Bound a Deferred: errback with TimeoutError naming what was awaited."""
    result = defer.Deferred()

    def expire():
        if not result.called:
            result.errback(defer.TimeoutError(f"timed out after {timeout}s waiting for {what}"))
    timer = reactor.callLater(timeout, expire)

    def done(r):
        if timer.active():
            timer.cancel()
        if not result.called:
            result.callback(r)
    d.addBoth(done)
    return result


class Collector:
    """A consumer callback recording (routing_key, data, pos, seq)."""

    def __init__(self, mq=None):
        self.mq = mq
        self.received = []
        self._waiters = []

    def __call__(self, key, data):
        delivery = self.mq.delivery if self.mq is not None else None
        self.received.append((key, data, delivery))
        for n, d in list(self._waiters):
            if len(self.received) >= n:
                self._waiters.remove((n, d))
                d.callback(self.received)

    @property
    def keys(self):
        return [r[0] for r in self.received]

    @property
    def data(self):
        return [r[1] for r in self.received]

    @property
    def positions(self):
        return [r[2][0] for r in self.received]

    def wait_for(self, n, timeout=TIMEOUT):
        """Fires with the received list once n messages arrived (bounded)."""
        if len(self.received) >= n:
            return defer.succeed(self.received)
        d = defer.Deferred()
        self._waiters.append((n, d))
        return with_timeout(d, timeout, f"{n} messages (have {len(self.received)})")


def until(predicate, interval=0.02):
    """Fires once predicate() holds, for state that offers no event to wait
    on (checked every interval seconds; bound it with with_timeout)."""
    d = defer.Deferred()

    def check():
        if d.called:
            return
        if predicate():
            d.callback(None)
        else:
            reactor.callLater(interval, check)
    check()
    return d


def batched_timers_fired(timeout=10):
    """Until autobahn's batched timers (txaio) have no bucket pending: a
    cancelled timer leaves its bucket's DelayedCall in the reactor until it
    fires, which trial reports as an unclean reactor after a test whose last
    client just closed (bounded)."""
    def none_pending():
        return not any(getattr(c.func, '__name__', '') == '_notify_bucket'
                       for c in reactor.getDelayedCalls())
    return with_timeout(until(none_pending), timeout, "autobahn's batched timers")


def assert_delivered_once_in_one_order(testcase, nodes, results, per_master):
    """Load nodes that each produced ``per_master`` messages: every one of
    them wrote a result, delivered every message once, all in one order, at
    consecutive positions, each producer's in produce order. Returns the
    verdict (``load/verify.py``)."""
    verdict = check_records({n.name: per_master for n in nodes},
                            {n.name: r for n, r in zip(nodes, results)},
                            logs={n.name: n.log_path for n in nodes})
    testcase.assertEqual(verdict.problems, [])
    return verdict


def http_get(url):
    """(status code, body) of a GET on loopback."""
    try:
        with urllib.request.urlopen(url, timeout=10) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()
