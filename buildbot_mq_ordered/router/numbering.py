"""The sequencer's numbering: stream positions, per-key sequence numbers and
producer de-duplication. Pure: no reactor, no I/O.

Memory stays bounded however many routing keys there are: only the most
recently used keys' counters are kept here, and a key that fell out of that
cache is asked of ``lookup_seq`` (the sequencing: a batch not yet committed,
or what it looked up in the journal before numbering - arrivals.py), so a
key seen again much later still gets the next number, never 1 again.
"""

from collections import OrderedDict

from buildbot_mq_ordered import wire


class Numbering:
    """Owns the next position, the recently used keys' counters and every
    producer's mark. ``Sequencing`` makes one from the journal (again after
    every reload) and numbers each submitted batch with ``assign``."""

    def __init__(self, last_pos=0, producer_marks=None, lookup_seq=None,
                 key_cache_size=10000, key_cache_bytes=4 * 1024 * 1024, term_id=None):
        self.last_pos = last_pos
        # the journal's term: every entry numbered here carries it
        self.term_id = term_id
        # producer id -> highest producer sequence number sequenced
        self.producer_marks = dict(producer_marks or {})
        self._lookup_seq = lookup_seq or (lambda key: 0)
        self._key_cache_size = key_cache_size
        # bounded by bytes too: keys may be up to 4 KiB each
        self._key_cache_bytes = key_cache_bytes
        self._cached_bytes = 0
        self._key_seq = OrderedDict()

    def keep_marks(self, producers):
        """Forget the marks of producers not in producers (retention)."""
        self.producer_marks = {p: m for p, m in self.producer_marks.items() if p in producers}

    def cached(self, key):
        """Key's newest number if the cache has it, else None."""
        return self._key_seq.get(key)

    def last_seq(self, key):
        seq = self._key_seq.get(key)
        if seq is None:
            seq = self._lookup_seq(key)
        return seq

    def assign(self, producer, messages):
        """Number one submitted batch.

        ``messages`` is an iterable of (producer_seq, key, payload) with key a
        tuple; a message whose producer_seq is not above what this producer
        already had sequenced is a resubmission and is dropped.

        Returns (entries, producer_mark): entries are (pos, seq, key,
        payload, term_id) for the new messages, and producer_mark is the highest
        producer_seq now sequenced for this producer (what the submitter may
        forget).
        """
        mark = self.producer_marks.get(producer, 0)
        cache = self._key_seq
        batch = {}   # this batch's counters: applied only if numbering succeeds
        entries = []
        pos = self.last_pos
        term_id = self.term_id
        for pseq, key, payload in messages:
            if pseq <= mark:
                continue
            mark = pseq
            seq = batch.get(key)
            if seq is None:
                seq = cache.get(key)
                if seq is None:
                    seq = self._lookup_seq(key)
            seq += 1
            batch[key] = seq
            pos += 1
            entries.append((pos, seq, key, payload, term_id))
        self.last_pos = pos
        if mark:
            self.producer_marks[producer] = mark
        for key, seq in batch.items():
            if cache.pop(key, None) is None:
                self._cached_bytes += key_bytes(key)
            cache[key] = seq
        # evict least recently used counters; the journal has them
        while cache and (len(cache) > self._key_cache_size or
                         self._cached_bytes > self._key_cache_bytes):
            key, _ = cache.popitem(last=False)
            self._cached_bytes -= key_bytes(key)
        return entries, mark

    @property
    def cached_key_bytes(self):
        return self._cached_bytes


def key_bytes(key):
    """What a cached key costs, roughly: its bytes and some per element."""
    return wire.key_size(key) + 8 * len(key)
