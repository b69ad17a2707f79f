"""The batches numbered but not yet committed, each with the Deferred its
submitter waits on: the queue, and the group being committed. Pure."""

from twisted.internet import defer


class Batches:
    """Owns the queue and the group being committed. ``GroupCommit`` adds
    to the queue, takes it as the next group, and answers or fails them;
    the sequencing asks what they hold (``pending_seq``, ``producers``)."""

    def __init__(self):
        self.queue = []      # (entries, producer, mark, deferred), numbered
        self.writing = []    # the group being committed

    def add(self, entries, producer, mark):
        d = defer.Deferred()
        self.queue.append((entries, producer, mark, d))
        return d

    def take_group(self):
        """The queue becomes the group being committed: its (entries,
        producer, mark)."""
        self.writing, self.queue = self.queue, []
        return [b[:3] for b in self.writing]

    def end_group(self):
        """The group's entries and Deferreds, once its commit ended."""
        group, self.writing = self.writing, []
        return [e for b in group for e in b[0]], [b[3] for b in group]

    def fail_queue(self, failure):
        queued, self.queue = self.queue, []
        for *_, d in queued:
            d.errback(failure)

    def pending_seq(self, key):
        """The newest number of key in a batch not yet committed, or None."""
        for entries, _, _, _ in reversed(self.writing + self.queue):
            for entry in reversed(entries):
                if entry[2] == key:
                    return entry[1]
        return None

    def producers(self):
        return {b[1] for b in self.writing + self.queue}
