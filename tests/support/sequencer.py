"""A sequencer driven directly, without a router: its publish recorded, its
writer's jobs run in place on a clock the test drives (``s.clock``), its
log lines kept."""

from autobahn.wamp.types import ComponentConfig
from twisted.internet import defer
from twisted.internet import task

from buildbot_mq_ordered.router import sequencer as seqmod
from buildbot_mq_ordered.router.journal import Journal


class RecordingLog:
    def __init__(self, said):
        self.said = said

    def __getattr__(self, level):
        return lambda text, **kw: self.said.append((level, text, kw))


def make_sequencer(journal=None, log=None):
    s = seqmod.Sequencer(ComponentConfig('buildbot', {}))
    if log is not None:
        s.log = log
    # the writer's jobs in place: each submit's answer is there at once
    s.clock = task.Clock()
    s.use_journal(journal or Journal(':memory:'), key_cache_size=100, run=defer.maybeDeferred,
                  clock=s.clock)
    s.leadership.leading, s.leadership.term = True, 1
    s.published = []

    def publish(topic, stream_id, entries):
        assert stream_id == s.journal.stream_id   # every event names its stream
        s.published.append((topic, entries))
    s.publish = publish
    return s
