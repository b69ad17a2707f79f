"""The cluster's page in Buildbot's web UI, through Buildbot's
``wsgi_dashboards`` plugin (``buildbot_mq_ordered.dashboard()`` in
master.cfg makes the entry).

A plain WSGI app, three paths:

- ``index.html``: what the plugin puts into Buildbot's page. Buildbot's UI
  inserts it as HTML, where scripts do not run, so it is a frame showing
  ``page.html``.
- ``page.html``: the page; its script polls ``status.json`` every
  ``POLL_SECONDS`` and draws the table and the plots (lag per master and
  messages per second, over the last minutes it has been open). No script
  from elsewhere: it works on a master without internet access.
- ``status.json``: the router's ``status`` (its monitor), asked through
  this master's own joined session.

WSGI apps run in a thread of the reactor's pool: the call to the router
goes through the reactor (``blockingCallFromThread``), bounded.
"""

import json
import os

from twisted.internet import reactor
from twisted.internet.threads import blockingCallFromThread

from buildbot_mq_ordered import wire

POLL_SECONDS = 2
CALL_TIMEOUT = 10
PAGE = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'dashboard.html')


def frame(name):
    return (f'<iframe src="plugins/wsgi_dashboards/{name}/page.html" title="MQ cluster" '
            'style="width: 100%; height: 85vh; border: 0"></iframe>')


class DashboardApp:
    """The WSGI app Buildbot's ``wsgi_dashboards`` plugin serves (made by
    ``buildbot_mq_ordered.dashboard()`` in master.cfg): the frame, the page
    and the router's status, asked through this master's MQ session."""

    def __init__(self, name):
        self.name = name
        self.buildbot_api = None   # set by the wsgi_dashboards plugin

    def __call__(self, environ, start_response):
        path = environ.get('PATH_INFO', '').strip('/')
        if path in ('', 'index.html'):
            return self._answer(start_response, '200 OK', 'text/html', frame(self.name))
        if path == 'page.html':
            with open(PAGE, encoding='utf-8') as f:
                page = f.read().replace('POLL_SECONDS', str(POLL_SECONDS))
            return self._answer(start_response, '200 OK', 'text/html', page)
        if path == 'status.json':
            code, body = self.status()
            return self._answer(start_response, code, 'application/json', json.dumps(body))
        return self._answer(start_response, '404 Not Found', 'text/plain', 'not found')

    @staticmethod
    def _answer(start_response, code, ctype, text):
        body = text.encode('utf-8')
        start_response(code, [('Content-Type', f'{ctype}; charset=utf-8'),
                              ('Content-Length', str(len(body))),
                              ('Cache-Control', 'no-store')])
        return [body]

    def status(self):
        """(HTTP status, JSON body): the router's status, or why not."""
        try:
            return '200 OK', blockingCallFromThread(reactor, self._ask)
        except Exception as e:
            return '503 Service Unavailable', {'error': str(e) or type(e).__name__}

    def _ask(self):
        from buildbot_mq_ordered.master.mq import OrderedWampMQ
        master = self.buildbot_api.master
        impl = getattr(master.mq, 'impl', None)
        if not isinstance(impl, OrderedWampMQ):
            raise RuntimeError("this master's MQ is not ordered-wamp")
        if impl.session is None:
            raise RuntimeError("this master has not joined the router (its twistd.log "
                               "says why)")
        d = impl.session.call(wire.STATUS)
        return d.addTimeout(CALL_TIMEOUT, reactor)
