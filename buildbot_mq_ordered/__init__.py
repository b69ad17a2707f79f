"""buildbot-mq-ordered: a totally ordered, lossless Buildbot MQ.

``import buildbot_mq_ordered`` in master.cfg registers MQ type
``ordered-wamp`` with Buildbot: its connector can start it, and Buildbot's
config loader accepts its keys and reports bad values as config errors
naming the key. It registers only where Buildbot is in use (master.cfg runs
inside it); the router's processes import this package without Buildbot.

``master/`` runs inside a Buildbot master, ``router/`` in or beside the
Crossbar router; ``wire`` is the contract between them.
"""

import sys

__version__ = '0.5.0'

MQ_TYPE = 'ordered-wamp'


def register():
    """Register MQ type ``ordered-wamp`` with Buildbot (idempotent). master.cfg's
    ``import buildbot_mq_ordered`` does it; call it where Buildbot is imported
    after this package."""
    from buildbot_mq_ordered.master import registration
    registration.register()


def dashboard(name='mq', caption='MQ cluster', order=20):
    """The cluster's page in Buildbot's web UI; in master.cfg::

        c['www']['plugins']['wsgi_dashboards'] = [buildbot_mq_ordered.dashboard()]

    (needs ``pip install 'buildbot-mq-ordered[dashboard]'``; see
    docs/operations.rst)."""
    from buildbot_mq_ordered.master.dashboard import DashboardApp
    return {'name': name, 'caption': caption, 'app': DashboardApp(name),
            'order': order, 'icon': 'sitemap'}


# master.cfg is executed by Buildbot's config loader: Buildbot is loaded
if 'buildbot' in sys.modules:
    register()
