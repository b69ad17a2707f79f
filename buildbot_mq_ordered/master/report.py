"""A master's report to the router's monitor (``router/monitor/``).

Every ``REPORT_EVERY`` seconds while joined, at once on joining, and a last
one (state ``stopped``) when the MQ stops, a master publishes a small dict on
``wire.REPORT``: who it is and where it stands in the stream. Publishing is
fire and forget (no acknowledgement asked): a report never waits, and never
holds up produce or delivery; a report lost with a connection is replaced by
the next one.
"""

from twisted.internet import task
from twisted.python import log

from buildbot_mq_ordered import wire

REPORT_EVERY = 2.0


def master_name(mq):
    """Buildbot's master name (host:basedir) when the MQ runs in a master;
    else the name given to the service (load nodes), else the producer id."""
    master = getattr(getattr(mq, 'parent', None), 'master', None)
    name = getattr(master, 'name', None)
    if isinstance(name, str):
        return name
    if mq.name and mq.name != type(mq).name:   # Buildbot's default: no name given
        return mq.name
    return f'producer-{mq.producer_id[:12]}'


def build_report(mq, state, every=REPORT_EVERY):
    """The report of an OrderedWampMQ, as published."""
    follower, link = mq.follower, mq.link
    return {
        'master': master_name(mq),
        'producer_id': mq.producer_id,
        'state': state,
        'stream_id': follower.stream_id,
        # the highest position handed to the local consumers
        'delivered_pos': follower.next_pos - 1 if follower.started else None,
        'delivered': mq.delivered,
        'produced': mq.producer.produced,
        'outbox': len(mq.outbox),
        'buffer': len(follower.buffer),
        'skipped': follower.skipped,
        'replayed': follower.replayed,
        'reconnects': max(0, link.joins - 1) if link is not None else 0,
        'interval': every,
    }


class MasterReporter:
    """Publishes an MQ's report on the joined session, on a timer."""

    def __init__(self, mq, every=REPORT_EVERY, clock=None):
        self.mq = mq
        self.every = every
        self.clock = clock         # the reactor, unless a test's
        self.session = None
        self._loop = None
        self.published = 0

    def start(self, session):
        """Joined: report now (a change of state), then every ``every`` s."""
        self.stop()
        self.session = session
        self._loop = task.LoopingCall(self.publish, 'joined')
        if self.clock is not None:
            self._loop.clock = self.clock
        self._loop.start(self.every, now=True)

    def stop(self, final=False):
        """Left, or (final) the MQ stops: the monitor forgets it at once."""
        if final:
            self.publish('stopped')
        if self._loop is not None and self._loop.running:
            self._loop.stop()
        self._loop = self.session = None

    def publish(self, state):
        session = self.session
        if session is None:
            return
        try:
            if session.is_attached():
                session.publish(wire.REPORT, build_report(self.mq, state, self.every))
                self.published += 1
        except Exception as e:   # the transport went: the next join reports again
            log.msg(f"ordered-wamp: report not sent ({e})")
