"""What a router's sequencer says of its role, asked again and again on one
session of its own: when the standby began to lead, when a deposed leader
knew it. A frozen router answers nothing meanwhile; its late answers are
counted when they come."""

import time

from autobahn.twisted.component import Component
from twisted.internet import defer
from twisted.internet import reactor
from twisted.internet import task

from buildbot_mq_ordered import wire
from tests.support.util import batched_timers_fired
from tests.support.util import with_timeout

ASK_EVERY = 0.1       # seconds between answers
ASK_TIMEOUT = 2.0     # an answer later than this is not waited for
STOP_TIMEOUT = 10


class RoleWatch:
    """Owns one session to one router and every ``role`` answer it got:
    ``answers`` is [(time.time() when asked, when answered, leading)]. The
    router made each answer somewhere between the two."""

    def __init__(self, router):
        self.router = router
        self.answers = []
        self._stopping = False
        comp = Component(transports=[{'url': router.url, 'serializers': ['msgpack'],
                                      'max_retries': 0}],
                         realm=router.realm, main=self._main)
        self._done = comp.start(reactor)
        self._done.addErrback(lambda f: None)    # a router gone ends it

    @defer.inlineCallbacks
    def _main(self, reactor_, session):
        while not self._stopping and session.is_attached():
            asked = time.time()
            try:
                role = yield with_timeout(session.call(wire.ROLE), ASK_TIMEOUT, 'role')
            except Exception:
                pass    # unanswered (frozen) or refused: ask again
            else:
                self.answers.append((asked, time.time(), bool(role['leader'])))
            yield task.deferLater(reactor, ASK_EVERY, lambda: None)

    def first(self, leading, after):
        """When it first answered ``leading`` after ``after``, or None."""
        return next((t for _, t, lead in self.answers if t > after and lead == leading), None)

    def leading_after(self, other, after):
        """Proof of two leaders: an answer of ``leading`` this router made
        after ``other`` had answered ``leading`` (both after ``after``), as
        (this one asked, the other answered), or None. Only answers whose
        times cannot overlap count: polling every ``ASK_EVERY`` cannot tell
        a shorter overlap, and must not invent one."""
        theirs = other.first(True, after)
        if theirs is None:
            return None
        return next(((asked, theirs) for asked, answered, lead in self.answers
                     if lead and answered > after and asked > theirs), None)

    @defer.inlineCallbacks
    def stop(self):
        self._stopping = True
        try:
            yield with_timeout(self._done, STOP_TIMEOUT, f"the role watch of {self.router.url}")
        except defer.TimeoutError:
            pass    # a router still frozen: its session goes with it
        yield batched_timers_fired()


@defer.inlineCallbacks
def timed_role(router, timeout=30):
    """A fresh session's ``role`` call: (seconds to join, seconds to the
    answer, the answer or None), both counted from the connection's start.
    Its handshake waits as long as ``timeout``: a stalled router's figure
    is how long it stalled, not the client's patience."""
    t0 = time.monotonic()
    out = {}

    @defer.inlineCallbacks
    def main(reactor_, session):
        out['joined'] = time.monotonic() - t0
        out['role'] = yield session.call(wire.ROLE)
        out['answered'] = time.monotonic() - t0

    comp = Component(transports=[{'url': router.url, 'serializers': ['msgpack'],
                                  'max_retries': 0,
                                  'options': {'openHandshakeTimeout': timeout}}],
                     realm=router.realm, main=main)
    try:
        yield with_timeout(comp.start(reactor), timeout, f"role from {router.url}")
    except Exception:
        pass    # what came, came: the figures say what did not
    return out.get('joined'), out.get('answered'), out.get('role')
