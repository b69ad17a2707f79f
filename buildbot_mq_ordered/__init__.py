"""buildbot-mq-ordered: a totally ordered, lossless Buildbot MQ.

``import buildbot_mq_ordered`` in master.cfg registers MQ type
``ordered-wamp`` with Buildbot: its connector can start it, and Buildbot's
config loader accepts its keys and reports bad values as config errors
naming the key.
"""

import sys

from buildbot_mq_ordered.master.config import KEYS
from buildbot_mq_ordered.master.config import MQ_TYPE

__version__ = '0.1.0'

IMPORT_LINE = 'import buildbot_mq_ordered'


def dashboard(name='mq', caption='MQ cluster', order=20):
    """The cluster's page in Buildbot's web UI; in master.cfg::

        c['www']['plugins']['wsgi_dashboards'] = [buildbot_mq_ordered.dashboard()]

    (needs ``pip install 'buildbot-mq-ordered[dashboard]'``; see
    docs/operations.rst)."""
    from buildbot_mq_ordered.master.dashboard import DashboardApp
    return {'name': name, 'caption': caption, 'app': DashboardApp(name),
            'order': order, 'icon': 'sitemap'}


def import_autobahn_serializers():
    """Import autobahn's serializers without its optional UBJSON codec.

    autobahn.wamp.serializer imports ``bjdata`` if it is installed (Crossbar
    pulls it in); a bjdata built against NumPy 1 prints a traceback under
    NumPy 2 before falling back to pure Python. Masters and the router speak
    msgpack and JSON only, so bjdata is hidden while autobahn looks for it.
    """
    if 'autobahn.wamp.serializer' in sys.modules or 'bjdata' in sys.modules:
        return
    import txaio
    # first: the serializer module binds txaio's functions when imported
    txaio.use_twisted()
    sys.modules['bjdata'] = None  # makes `import bjdata` raise ImportError
    try:
        import autobahn.wamp.serializer  # noqa: F401
    finally:
        if sys.modules.get('bjdata', 0) is None:
            del sys.modules['bjdata']


def near_miss(typ):
    """True if typ looks like a misspelling of MQ_TYPE ('ordered_wamp')."""
    def squash(s):
        return ''.join(ch for ch in str(s).lower() if ch.isalnum())
    return typ != MQ_TYPE and squash(typ) == squash(MQ_TYPE)


def register():
    from buildbot.config import master as master_config
    from buildbot.config.errors import error
    from buildbot.mq.connector import MQConnector

    from buildbot_mq_ordered.master import config

    MQConnector.classes[MQ_TYPE] = {
        'class': 'buildbot_mq_ordered.master.mq.OrderedWampMQ',
        'keys': set(KEYS),
    }
    load_mq = master_config.MasterConfig.load_mq
    if getattr(load_mq, '_ordered_wamp', False):
        return

    # Buildbot checks only key names; values are checked here, during the
    # same config load, so `buildbot checkconfig` reports them too. Buildbot
    # has no hook for an MQ type's values: wrapping this one method (once,
    # marked) is the narrowest way; the MQ service would see them only when
    # the master starts.
    def load_mq_and_check_values(self, filename, config_dict):
        typ = config_dict.get('mq', {}).get('type') if isinstance(
            config_dict.get('mq'), dict) else None
        if typ not in MQConnector.classes and near_miss(typ):
            error(f"mq type '{typ}' is not known; did you mean '{MQ_TYPE}'?")
            return
        load_mq(self, filename, config_dict)
        if self.mq.get('type') == MQ_TYPE:
            for message in config.validate(self.mq):
                if not message.startswith("unrecognized keys"):  # Buildbot's own
                    error(message)

    load_mq_and_check_values._ordered_wamp = True
    master_config.MasterConfig.load_mq = load_mq_and_check_values


import_autobahn_serializers()
register()
