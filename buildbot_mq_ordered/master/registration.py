"""Registering MQ type ``ordered-wamp`` with Buildbot (``buildbot_mq_ordered.register``).

Buildbot's MQ connector knows its types from a class attribute, and its
config loader checks only the key names of ``c['mq']``.
"""

from buildbot.config import master as master_config
from buildbot.config.errors import error
from buildbot.mq.connector import MQConnector

from buildbot_mq_ordered import MQ_TYPE
from buildbot_mq_ordered.master import config
from buildbot_mq_ordered.master.config import KEYS


def near_miss(typ):
    """True if typ looks like a misspelling of MQ_TYPE ('ordered_wamp')."""
    def squash(s):
        return ''.join(ch for ch in str(s).lower() if ch.isalnum())
    return typ != MQ_TYPE and squash(typ) == squash(MQ_TYPE)


def register():
    """MQ type ``ordered-wamp`` in Buildbot's MQ connector, its values checked
    by Buildbot's config loader (idempotent)."""
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
