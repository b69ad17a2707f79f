"""The monitor: a router component beside the sequencer that sees the cluster.

It subscribes to the masters' reports (``master/report.py``) and to the
stream (messages per second), asks the sequencer's ``info`` every
``INFO_EVERY`` seconds, and registers ``status``: one dict of all of it,
which the ``status`` command, the dashboard and ``/metrics`` read. What it
concludes (lag, staleness, health) is ``clusterview.py``'s, pure.

With ``metrics_port`` in its config (``router --metrics-port``) it also
serves ``/metrics`` (Prometheus) and ``/healthz`` over HTTP from the router
worker. It never touches the sequencer's state: it only calls ``info``, so
a monitor that fails costs the stream nothing.
"""

from autobahn.twisted.wamp import ApplicationSession
from autobahn.wamp.types import SubscribeOptions
from twisted.internet import defer
from twisted.internet import task

from buildbot_mq_ordered import wire
from buildbot_mq_ordered.router.monitor.clusterview import ClusterView
from buildbot_mq_ordered.router.monitor.clusterview import router_problem

INFO_EVERY = 1.0
# an info call unanswered this long counts as failed (a wedged sequencer
# must not look like a leading one)
INFO_TIMEOUT = 5.0


class Monitor(ApplicationSession):
    """The monitor's WAMP side; Crossbar makes it (nodeconfig's monitor
    component). Owns its subscriptions, the ``info`` poll, the ``status``
    procedure and, with a metrics port, the HTTP side (``MetricsWeb``); what
    it concludes is its ``ClusterView``'s."""

    def __init__(self, config=None, reactor=None):
        super().__init__(config)
        if reactor is None:
            from twisted.internet import reactor
        self.reactor = reactor
        self.view = ClusterView()
        self._poll = None
        self._web = None

    @defer.inlineCallbacks
    def onJoin(self, details):
        extra = self.config.extra or {}
        yield self.subscribe(self.on_report, wire.REPORT)
        yield self.subscribe(self.on_stream, wire.STREAM,
                             options=SubscribeOptions(details_arg='details'))
        yield self.register(self.status, wire.STATUS)
        self._poll = task.LoopingCall(self.ask_info)
        self._poll.start(INFO_EVERY, now=True)
        if extra.get('metrics_port'):
            self._serve(extra['metrics_host'] or '127.0.0.1', extra['metrics_port'])
        self.log.info("monitor ready on realm {realm}", realm=self.config.realm)

    def onLeave(self, details):
        if self._poll is not None and self._poll.running:
            self._poll.stop()
        if self._web is not None:
            self._web.stop()
            self._web = None
        super().onLeave(details)

    def now(self):
        return self.reactor.seconds()

    # -- what it hears --------------------------------------------------------

    def on_report(self, *args, **kwargs):
        self.view.on_report(args[0] if len(args) == 1 else None, self.now())

    def on_stream(self, *args, details=None, **kwargs):
        # only the sequencer's events count, as for masters (master/streamreader.py)
        if details is None or details.publisher_authrole != wire.SEQUENCER_ROLE or \
                len(args) != 2:
            return
        self.view.on_stream(args[0], args[1], self.now())

    def ask_info(self):
        d = self.call(wire.INFO, **wire.handshake()).addTimeout(INFO_TIMEOUT, self.reactor)
        d.addCallbacks(lambda info: self.view.on_info(info, self.now()), self._no_info)
        return d

    def _no_info(self, failure):
        """No leading sequencer here: a standby's, if its role says so."""
        reason = failure.getErrorMessage()
        d = self.call(wire.ROLE).addTimeout(INFO_TIMEOUT, self.reactor)
        d.addCallbacks(lambda role: self.view.on_role(role, reason, self.now()),
                       lambda f: self.view.on_info_failed(reason, self.now()))
        return d

    # -- what it tells ----------------------------------------------------------

    def status(self, *args, **kwargs):
        return self.view.status(self.now())

    def health(self):
        """(ok, one line) for /healthz."""
        problem = router_problem(self.status())
        return problem is None, problem or 'ok'

    def _serve(self, host, port):
        from buildbot_mq_ordered.router.monitor.web import MetricsWeb
        try:
            self._web = MetricsWeb(self, host, port, self.reactor)
        except Exception as e:
            # the stream goes on without metrics; the operator reads why
            self.log.error("monitor: cannot serve /metrics on {host}:{port}: {err}",
                           host=host, port=port, err=e)
        else:
            self.log.info("monitor: /metrics and /healthz at http://{host}:{port}/",
                          host=host, port=port)
