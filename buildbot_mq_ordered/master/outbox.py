"""Messages produced but not yet acknowledged by the sequencer. Pure.

Every message gets the next producer sequence number; it stays here until
an acknowledgement covers it, and is resubmitted (from the oldest) after a
reconnect - the sequencer drops what it had already sequenced. Bounded:
at ``max_messages`` the oldest is dropped and counted.
"""

from collections import deque

from buildbot_mq_ordered import wire


class Outbox:
    """The produced messages not yet acknowledged, oldest first, each with
    its producer sequence number and its size. The ``Producer`` owns it
    (adds, batches, acks); the MQ reads its length (stats, stop)."""

    def __init__(self, max_messages=100000):
        self.max_messages = max_messages
        self.next_seq = 1
        self.dropped = 0
        self._pending = deque()   # [producer_seq, key, data]
        self._sizes = deque()     # bytes of each pending message: key and data

    def __len__(self):
        return len(self._pending)

    def add(self, key, data, size=None):
        """Queue a message (data: its encoded bytes; size: its bytes, key
        included, if known); returns the message dropped to make room, or None."""
        msg = [self.next_seq, key, data]
        self.next_seq += 1
        dropped = None
        if len(self._pending) >= self.max_messages:
            dropped = self._pending.popleft()
            self._sizes.popleft()
            self.dropped += 1
        self._pending.append(msg)
        if size is None:
            size = len(data) + wire.key_size(key)
        self._sizes.append(size)
        return dropped

    def batch(self, max_count, max_bytes):
        """The oldest unacknowledged messages, within both limits (at least one)."""
        out = []
        size = 0
        for msg, msg_size in zip(self._pending, self._sizes):
            size += msg_size + 64
            if out and (len(out) >= max_count or size > max_bytes):
                break
            out.append(msg)
        return out

    def ack(self, mark):
        """Forget every message with producer_seq <= mark; returns how many."""
        n = 0
        pending = self._pending
        while pending and pending[0][0] <= mark:
            pending.popleft()
            self._sizes.popleft()
            n += 1
        return n
