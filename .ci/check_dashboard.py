"""The dashboard's page from an installed wheel, run from outside the
clone by .ci/release-check: importlib.resources finds dashboard.html in
the installed package, and the dashboard's WSGI app, served on a loopback
port, answers GET index.html and page.html with it."""

import importlib.resources
import os
import sys
import threading
import urllib.request
from wsgiref.simple_server import WSGIRequestHandler
from wsgiref.simple_server import make_server

import buildbot_mq_ordered
from buildbot_mq_ordered.master.dashboard import POLL_SECONDS
from buildbot_mq_ordered.master.dashboard import DashboardApp


class Quiet(WSGIRequestHandler):
    def log_message(self, *args):
        pass


def get(port, path):
    with urllib.request.urlopen(f'http://127.0.0.1:{port}/{path}', timeout=10) as r:
        return r.status, r.headers['Content-Type'], r.read().decode('utf-8')


def main(venv):
    where = os.path.realpath(buildbot_mq_ordered.__file__)
    if not where.startswith(os.path.realpath(venv) + os.sep):
        sys.exit(f"check_dashboard: buildbot_mq_ordered imported from {where}, not {venv}")
    html = importlib.resources.files('buildbot_mq_ordered.master') \
        .joinpath('dashboard.html').read_text(encoding='utf-8')
    server = make_server('127.0.0.1', 0, DashboardApp('mq'), handler_class=Quiet)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        port = server.server_address[1]
        status, ctype, frame = get(port, 'index.html')
        assert (status, ctype) == (200, 'text/html; charset=utf-8'), (status, ctype)
        assert 'page.html' in frame, frame
        status, ctype, page = get(port, 'page.html')
        assert (status, ctype) == (200, 'text/html; charset=utf-8'), (status, ctype)
        assert page == html.replace('POLL_SECONDS', str(POLL_SECONDS)), "not dashboard.html"
    finally:
        server.shutdown()
    print(f"check_dashboard: dashboard.html ({len(html)} characters) read from the "
          f"installed package and served: GET index.html, page.html 200")


if __name__ == '__main__':
    main(sys.argv[1])
