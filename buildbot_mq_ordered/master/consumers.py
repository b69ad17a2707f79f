"""Local consumers of one master: Buildbot's QueueRef semantics.

Matching is Buildbot's own ``tuplematch.matchTuple``: exact elements,
``None`` wildcards, and tuples of different lengths never match. A
persistent consumer (``persistent_name``) keeps receiving into a queue
while stopped and replays that queue when started again, as ``SimpleMQ``
does.
"""

from buildbot.mq import base


class QueueRef(base.QueueRef):
    """What ``startConsuming`` returns: one consumer's callback and filter,
    in the ``ConsumerRegistry`` until ``stopConsuming``."""

    __slots__ = ['filter', 'registry']

    def __init__(self, registry, callback, filter):
        super().__init__(callback)
        self.registry = registry
        self.filter = tuple(filter)

    def stopConsuming(self):
        # idempotent; effective at once: dispatch checks .callback per message
        self.callback = None
        self.registry.remove(self)


class PersistentQueueRef(QueueRef):
    """A named consumer (``persistent_name``): stopped, it stays in the
    registry and queues what matches; started again under its name, it
    gets that queue first."""

    __slots__ = ['active', 'queue']

    def __init__(self, registry, callback, filter):
        super().__init__(registry, callback, filter)
        self.active = True
        self.queue = []

    def startConsuming(self, callback):
        self.callback = callback
        self.active = True
        queue, self.queue = self.queue, []
        for routing_key, data in queue:
            self.registry.invoke(self, routing_key, data)

    def stopConsuming(self):
        # stays registered, queueing, until started again under its name
        self.callback = self.queue_message
        self.active = False

    def queue_message(self, routing_key, data):
        self.queue.append((routing_key, data))


class ConsumerRegistry:
    """Who is consuming what on this master: the MQ's ``startConsuming``
    adds, the refs remove themselves, the ``Dispatcher`` reads
    ``consumers``; ``invoke`` is the MQ's (Buildbot's ``invokeQref``)."""

    def __init__(self, invoke):
        self.invoke = invoke
        self.consumers = []
        self.persistent = {}

    def add(self, callback, filter, persistent_name=None):
        if persistent_name:
            qref = self.persistent.get(persistent_name)
            if qref is not None:
                qref.startConsuming(callback)
                return qref
            qref = PersistentQueueRef(self, callback, filter)
            self.persistent[persistent_name] = qref
        else:
            qref = QueueRef(self, callback, filter)
        # copy-on-write: a dispatch loop in progress keeps its own list
        self.consumers = self.consumers + [qref]
        return qref

    def remove(self, qref):
        if qref in self.consumers:
            self.consumers = [q for q in self.consumers if q is not qref]
