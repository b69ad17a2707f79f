"""Messages produced but not yet acknowledged by the sequencer. Pure.

Every message gets the next producer sequence number; it stays here until
an acknowledgement covers it, and is resubmitted (from the oldest) after a
reconnect - the sequencer drops what it had already sequenced. Bounded:
at ``max_messages`` the oldest is dropped and counted.
"""

from collections import deque


class Outbox:
    def __init__(self, max_messages=100000):
        self.max_messages = max_messages
        self.next_seq = 1
        self.dropped = 0
        self._pending = deque()   # [producer_seq, key, data_json]

    def __len__(self):
        return len(self._pending)

    def add(self, key, data_json):
        """Queue a message; returns the message dropped to make room, or None."""
        msg = [self.next_seq, key, data_json]
        self.next_seq += 1
        dropped = None
        if len(self._pending) >= self.max_messages:
            dropped = self._pending.popleft()
            self.dropped += 1
        self._pending.append(msg)
        return dropped

    def batch(self, max_count, max_bytes):
        """The oldest unacknowledged messages, within both limits (at least one)."""
        out = []
        size = 0
        for msg in self._pending:
            size += len(msg[2]) + 64
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
            n += 1
        return n
