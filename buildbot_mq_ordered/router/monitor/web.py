"""The monitor's HTTP side: ``/metrics`` (prometheus-client's
``MetricsResource``) and ``/healthz`` (200 or 503, one line saying why)."""

from twisted.internet.threads import blockingCallFromThread
from twisted.web import resource
from twisted.web import server

from buildbot_mq_ordered.router.monitor import metrics


class Healthz(resource.Resource):
    """``/healthz``: 200 or 503 and one line, from ``health()`` (the
    monitor's verdict on this router); ``MetricsWeb`` mounts it."""

    isLeaf = True

    def __init__(self, health):
        super().__init__()
        self.health = health

    def render_GET(self, request):
        ok, line = self.health()
        request.setResponseCode(200 if ok else 503)
        request.setHeader(b'Content-Type', b'text/plain; charset=utf-8')
        request.setHeader(b'Cache-Control', b'no-store')
        return (line + '\n').encode('utf-8')


class MetricsWeb:
    """Owns the listening port of ``/metrics`` and ``/healthz`` and the
    status collector in the metrics registry, while the monitor is joined;
    the monitor makes it and stops it."""

    def __init__(self, monitor, host, port, reactor):
        from prometheus_client.twisted import MetricsResource
        # MetricsResource collects in a thread of the reactor's pool: the
        # status is read on the reactor, where the monitor's state lives
        self.collector = metrics.StatusCollector(
            lambda: blockingCallFromThread(reactor, monitor.status))
        metrics.REGISTRY.register(self.collector)
        root = resource.Resource()
        root.putChild(b'metrics', MetricsResource(metrics.REGISTRY))
        root.putChild(b'healthz', Healthz(monitor.health))
        try:
            site = server.Site(root)
            site.log = lambda request: None   # a scrape every few seconds: no access log
            self.port = reactor.listenTCP(port, site, interface=host)
        except Exception:
            metrics.REGISTRY.unregister(self.collector)
            raise

    def stop(self):
        metrics.REGISTRY.unregister(self.collector)
        return self.port.stopListening()
