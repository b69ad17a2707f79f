"""The verifier: what a multi-master run must show, judged from what each
master delivered. Nothing lost, nothing twice, nothing nobody produced, the
same order on every master, each producer's messages in the order it
produced them, consecutive stream positions; given the routing keys, every
key numbered 1, 2, 3, ... and every message with the same position and
number on every master. Pure: no I/O.

A message is ``(producer, index)``: the index-th message of that producer.
The evidence comes in two sizes:

- full records (the demo, the tests): every delivery in order, with the
  position and per-key number the master saw - ``check_records``;
- constant-size summaries (the bench's long runs), kept by a
  ``DeliveryTally`` inside each load node as it delivers -
  ``check_summaries``.

A record is what a load node writes (``load/loadnode.py``): ``delivered``
([producer, index] in delivery order), ``positions``, ``seqs``,
``complete``, ``summary``.
"""

import hashlib

# digest entries (two per message) hashed at once: constant memory, little
# work per message
DIGEST_CHUNK = 4096


class DeliveryTally:
    """What one master delivered, kept as it delivers, in constant memory
    per message: per producer a bitmap of the indexes seen, the duplicates,
    the deliveries out of their producer's order, and a running digest of
    the delivery order (equal digests: the same order)."""

    def __init__(self):
        self.duplicates = 0
        self.out_of_order = 0
        self._seen = {}          # producer -> bytearray bitmap of indexes
        self._unique = {}        # producer -> distinct indexes delivered
        self._next = {}          # producer -> next index expected
        self._digest = hashlib.blake2b(digest_size=16)
        self._order = []         # producer, index, ... not yet in the digest

    def add(self, producer, index):
        seen = self._seen.get(producer)
        if seen is None:
            seen = self._seen[producer] = bytearray()
            self._unique[producer] = 0
            self._next[producer] = 0
        byte, bit = divmod(index, 8)
        if byte >= len(seen):  # at least doubles: few copies
            seen.extend(bytes(max(byte + 1 - len(seen), len(seen))))
        if seen[byte] & (1 << bit):
            self.duplicates += 1
        else:
            seen[byte] |= 1 << bit
            self._unique[producer] += 1
        if index != self._next[producer]:
            self.out_of_order += 1
        self._next[producer] = max(self._next[producer], index + 1)
        order = self._order
        order.append(producer)
        order.append(index)
        if len(order) >= DIGEST_CHUNK:
            self._fold_digest()

    def _fold_digest(self):
        if self._order:
            self._digest.update(repr(self._order).encode())
            self._order = []

    def summary(self):
        self._fold_digest()
        return {'unique': dict(self._unique), 'duplicates': self.duplicates,
                'out_of_order': self.out_of_order, 'digest': self._digest.hexdigest()}


def check_summaries(produced, records):
    """Judge a run by the masters' summaries.

    ``produced``: {producer: messages it produced}; ``records``: one per
    master, None where a master wrote none (it counts as having lost all).
    Returns lost and duplicated deliveries (all masters together), the
    deliveries out of their producer's order, whether every master wrote a
    complete record, and whether all delivered the same order.
    """
    good = [r for r in records if r is not None]
    lost = sum(produced.values()) * (len(records) - len(good))
    duplicated = 0
    for r in good:
        s = r['summary']
        lost += sum(n - s['unique'].get(p, 0) for p, n in produced.items())
        duplicated += s['duplicates']
    complete = len(good) == len(records) and all(r['complete'] for r in good)
    digests = {r['summary']['digest'] for r in good}
    return {'lost': lost, 'duplicated': duplicated,
            'out_of_order': sum(r['summary']['out_of_order'] for r in good),
            'complete': complete, 'same_order': complete and len(digests) == 1}


class MasterVerdict:
    """One master's findings; ``record`` None: it wrote no result."""

    def __init__(self, name, record):
        self.name = name
        self.record = record
        self.delivered = self.lost = self.duplicated = self.foreign = None
        self.same_order = False


class RunVerdict:
    """What ``check_records``/``check_summaries`` concluded of one run: a
    ``MasterVerdict`` per master, and whether all masters agree. The demo,
    the bench and the tests read it."""

    def __init__(self, produced):
        self.produced = produced
        self.masters = []
        self.problems = []           # one sentence each, naming the master
        self.same_everywhere = False
        self.reference = 0           # messages in the reference order
        self.first_position = None
        self.keys_checked = 0        # routing keys whose numbering was checked

    @property
    def passed(self):
        return not self.problems


def check_records(produced, records, key_of=None, logs=None):
    """Judge a run by the masters' full records.

    ``produced``: {producer: messages it produced}; ``records``: {master:
    its record, or None}, in master order. ``key_of(producer, index)``:
    the message's routing key; with it, the per-key numbers are checked
    (those of a fresh router: 1, 2, 3, ...). ``logs``: {master: its log},
    named where a record is missing.
    """
    verdict = RunVerdict(produced)
    expected = {(p, i) for p, n in produced.items() for i in range(n)}
    good = [r for r in records.values() if r is not None]
    # the reference order: the longest delivered sequence
    ref = [tuple(x) for x in max((r['delivered'] for r in good), key=len, default=[])]
    for name, r in records.items():
        if r is None:
            verdict.problems.append(f"{name} wrote no result"
                                    + (f" (see {logs[name]})" if logs else ""))
    for name, r in records.items():
        verdict.masters.append(_check_master(name, r, expected, ref, verdict.problems))
    if key_of is not None:
        verdict.keys_checked = _check_numbering(records, key_of, verdict.problems)
    verdict.same_everywhere = all(m.same_order and not m.lost for m in verdict.masters)
    verdict.reference = len(ref)
    if good and good[0]['positions']:
        verdict.first_position = good[0]['positions'][0]
    return verdict


def _check_master(name, r, expected, ref, problems):
    m = MasterVerdict(name, r)
    if r is None:
        return m
    delivered = [tuple(x) for x in r['delivered']]
    got = set(delivered)
    m.delivered = len(delivered)
    m.lost = len(expected - got)
    m.duplicated = len(delivered) - len(got)
    m.foreign = len(got - expected)
    # the same relative order as the reference, over the messages both have
    common = got.intersection(ref)
    firsts = list(dict.fromkeys(delivered))
    m.same_order = ([x for x in firsts if x in common]
                    == [x for x in dict.fromkeys(ref) if x in common])
    if m.lost:
        problems.append(f"{name} lost {m.lost} of {len(expected)} messages")
    if m.duplicated:
        problems.append(f"{name} delivered {m.duplicated} messages twice")
    if m.foreign:
        problems.append(f"{name} delivered {m.foreign} messages nobody produced")
    if not m.same_order:
        problems.append(f"{name} delivered in a different order")
    # the sequencer's numbering, as this master saw it
    pos = r['positions']
    if pos and pos != list(range(pos[0], pos[0] + len(pos))):
        problems.append(f"{name}: stream positions are not consecutive")
    if not r['complete'] and not m.lost:
        problems.append(f"{name} did not finish")
    # each producer's messages in its produce order
    nxt = {}
    for p, i in firsts:
        if i < nxt.get(p, 0):
            problems.append(f"{name} delivered {p}'s messages out of their produce order")
            break
        nxt[p] = i + 1
    return m


def _check_numbering(records, key_of, problems):
    """Per-key numbers 1, 2, 3, ... on every master, and every message with
    the same (position, number) everywhere. Returns how many keys."""
    keys = set()
    first = None    # message -> (position, number) on the first master
    for name, r in records.items():
        if r is None or not r['seqs']:
            continue
        last = {}
        mine = {}
        for (p, i), pos, seq in zip(map(tuple, r['delivered']), r['positions'], r['seqs']):
            key = key_of(p, i)
            if seq != last.get(key, 0) + 1:
                problems.append(f"{name}: routing key {key} numbered "
                                f"{seq} after {last.get(key, 0)}")
                break
            last[key] = seq
            mine[(p, i)] = (pos, seq)
        keys.update(last)
        if first is None:
            first = mine
        elif any(first.get(x, v) != v for x, v in mine.items()):
            problems.append(f"{name}: a message has another position or "
                            "sequence number than on the first master")
    return len(keys)
