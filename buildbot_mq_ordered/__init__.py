"""buildbot-mq-ordered: a totally ordered, lossless Buildbot MQ.

``import buildbot_mq_ordered`` in master.cfg registers MQ type
``ordered-wamp`` with Buildbot: its connector can start it, and Buildbot's
config loader accepts its keys and reports bad values as config errors
naming the key.
"""

from buildbot_mq_ordered.config import KEYS
from buildbot_mq_ordered.config import MQ_TYPE

__version__ = '0.1.0'


def register():
    from buildbot.config import master as master_config
    from buildbot.config.errors import error
    from buildbot.mq.connector import MQConnector

    from buildbot_mq_ordered import config

    MQConnector.classes[MQ_TYPE] = {
        'class': 'buildbot_mq_ordered.mq.OrderedWampMQ',
        'keys': set(KEYS),
    }
    load_mq = master_config.MasterConfig.load_mq
    if getattr(load_mq, '_ordered_wamp', False):
        return

    # Buildbot checks only key names; values are checked here, during the
    # same config load, so `buildbot checkconfig` reports them too.
    def load_mq_and_check_values(self, filename, config_dict):
        load_mq(self, filename, config_dict)
        if self.mq.get('type') == MQ_TYPE:
            for message in config.validate(self.mq):
                if not message.startswith("unrecognized keys"):  # Buildbot's own
                    error(message)

    load_mq_and_check_values._ordered_wamp = True
    master_config.MasterConfig.load_mq = load_mq_and_check_values


register()
