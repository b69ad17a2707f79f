"""What travels between masters and the sequencer: URIs and message checks.

Routing keys travel as lists inside the payload (never encoded into a WAMP
URI), so any string element round-trips: dots, '#', '*', spaces, ''.
Message data travels as its own msgpack encoding (bytes): the router and
the sequencer never parse it, and a master decodes it only when a local
consumer matches. msgpack carries what Buildbot puts into messages as it
is - ``bytes`` (a patch's body), datetimes, integer dict keys - where JSON
would turn them into something else or refuse them (docs/guarantees.rst
lists what still changes on the way).

info(protocol=[major, minor]) -> {'stream_id': ..., 'head': last_pos,
          'first_pos': oldest retained,
          'term': the lease's term number, 'journal_rows': ..., 'term_id': the
          current term's id, 'terms': [[term_id, first_pos], ...] the journal's
          most recent terms (at most MAX_TERMS), oldest first, the current one
          last}: a master's handshake, refused with PROTOCOL_MISMATCH when the
          sequencer does not speak its major version
submit(producer_id, [[producer_seq, key, data], ...])
    -> [producer_mark, last_pos, prior_mark]: the highest producer_seq
       sequenced for producer_id, the position of the batch's last new
       message (or None), and the producer's mark in the journal before
       this batch (0 if none): lower than what a master was acknowledged,
       the journal lost the difference (a failover, a restored backup)
replay(from_pos, limit) -> [stream_id, first_pos, last_pos, [entry, ...]]
    first_pos: oldest position still in the history; last_pos: the head
stream event: (stream_id, [entry, ...])
    with entry = [pos, seq, key, data, term_id]

A term is one leader's epoch: a router taking the lead (PostgreSQL: each
lease taken; SQLite: each opening of the journal by a router) makes a new
random term id, and every entry carries the id of the term that committed
it. A journal that lost its tail (an asynchronous replica promoted, a
backup restored) continues under a new term from a lower position: a
master that meets a term id it does not know learns where that term began
(info's ``terms``) before it takes any position as delivered.

The stream id names the journal the positions belong to (a UUID made with
it): a router that lost its journal starts a new stream, with a new id.
"""

import datetime

import msgpack

# The wire protocol this release speaks: (major, minor). Peers of one major
# share a cluster; a minor adds only what the other side may ignore (a
# keyword argument, a dict key, an element at the end of a list). Anything
# else is a new major (docs/design.rst, "How the wire evolves").
PROTOCOL = (2, 0)
# what releases before 0.5.0 spoke: they sent no version
UNVERSIONED = (1, 0)

PREFIX = 'buildbot.mq.ordered.'
SUBMIT = PREFIX + 'submit'
REPLAY = PREFIX + 'replay'
INFO = PREFIX + 'info'
# every sequencer, leading or standing by, on its own router: its part
ROLE = PREFIX + 'role'
STREAM = PREFIX + 'stream'
# observation (master/report.py, router/monitor/): masters publish reports,
# the router's monitor answers status
REPORT = PREFIX + 'report'
STATUS = PREFIX + 'status'
MONITOR_ROLE = 'monitor'
# the router discloses the publisher's role on stream events; only this one counts
SEQUENCER_ROLE = 'sequencer'

# errors the sequencer answers with
ERROR = PREFIX + 'error.'
MALFORMED = ERROR + 'malformed'          # a call of the wrong shape
JOURNAL_ERROR = ERROR + 'journal'        # not written (or not leading): retry
NOT_BOUND = ERROR + 'not_bound'          # --secret-file, but the caller has no authid
BUSY = ERROR + 'busy'                    # too many replays under way: retry later
# info() from a master of a major version the sequencer does not speak;
# the error's keyword 'protocol' is the sequencer's own version
PROTOCOL_MISMATCH = ERROR + 'protocol'
# what a call to a procedure nobody registered raises: a router without a
# leading sequencer (a standby, or one that stopped leading)
NO_SEQUENCER = 'wamp.error.no_such_procedure'

# the most entries one replay call returns (the sequencer caps it too), and
# the most bytes of keys and data (the router refuses frames over 16 MiB;
# one message alone may be up to 8 MiB, and is always answered)
MAX_REPLAY = 5000
MAX_REPLAY_BYTES = 4 * 1024 * 1024
# a submit carries at most this many messages / bytes of keys and data
MAX_BATCH = 2000
MAX_BATCH_BYTES = 4 * 1024 * 1024
# data bytes in one stream event (one message may be larger alone)
MAX_EVENT_BYTES = 4 * 1024 * 1024
# the sequencer keeps keys (counters) and producer ids (marks): both bounded
MAX_KEY_BYTES = 4096
MAX_PRODUCER_ID = 128
# the most terms info() tells (the journal's most recent ones)
MAX_TERMS = 32
# a term id: a positive 63-bit integer
MAX_TERM_ID = 2 ** 63 - 1

# msgpack extension for a datetime without tzinfo (ISO text): aware ones
# travel as msgpack's own Timestamp, which has no room for "naive"
NAIVE_DATETIME = 1


# characters of a key, data or error text that a log line shows
SHOWN = 200


def shown(value, limit=SHOWN):
    """Text for a log line: ``value`` (a str as it is, anything else its
    repr), cut to ``limit`` characters with a marker saying how long it
    was. A routing key, data or an error that quotes them can be megabytes;
    one log line must not be."""
    text = value if isinstance(value, str) else repr(value)
    if len(text) <= limit:
        return text
    return f"{text[:limit]}... [cut: {len(text)} characters in all]"


class MessageRejected(ValueError):
    """A produced message that cannot be sent; the reason says why."""


def _default(obj):
    if isinstance(obj, datetime.datetime):
        if obj.tzinfo is None:
            return msgpack.ExtType(NAIVE_DATETIME, obj.isoformat().encode('ascii'))
        return msgpack.Timestamp.from_datetime(obj)
    if isinstance(obj, int):  # msgpack hands over only what exceeds 64 bits
        raise OverflowError(f"integer {obj} is out of range (-2**63 .. 2**64-1)")
    raise TypeError(f"Object of type {type(obj).__name__} cannot be sent")


# datetime=False: every datetime goes through _default (naive ones included).
# One Packer (its buffer is reused): call from the reactor thread only.
encode_data = msgpack.Packer(use_bin_type=True, datetime=False, default=_default).pack


def key_size(key, errors='strict'):
    """UTF-8 bytes of a key's elements (strings, checked by the caller).

    What UTF-8 cannot carry (a lone surrogate) no WAMP serializer can send:
    it raises ``UnicodeEncodeError``, which makes a master reject the
    message. The sequencer counts it (``errors='surrogatepass'``) rather
    than raise on a key from a JSON peer (a ``\\ud800`` escape makes one)."""
    return sum(len(k.encode('utf-8', errors)) for k in key)


def encode_message(routing_key, data, max_size):
    """(key list, data bytes, size in bytes) for a produced message, or
    MessageRejected saying why. The size counts the key's UTF-8 bytes as
    well as the data's. No buildbot import here: the router host needs none.
    """
    if not isinstance(routing_key, (tuple, list)) or not all(
            isinstance(k, str) for k in routing_key):
        raise MessageRejected("routing key must be a tuple of strings")
    try:
        key_bytes = key_size(routing_key)
        raw = encode_data(data)
    except (TypeError, ValueError, OverflowError, UnicodeEncodeError) as e:
        raise MessageRejected(f"data cannot be sent: {e}") from e
    if key_bytes > MAX_KEY_BYTES:
        raise MessageRejected(f"routing key of {key_bytes} bytes exceeds the sequencer's "
                              f"limit ({MAX_KEY_BYTES})")
    size = key_bytes + len(raw)
    if size > max_size:
        raise MessageRejected(
            f"message of {size} bytes exceeds max_message_size ({max_size})")
    return list(routing_key), raw, size


def _ext(code, payload):
    if code == NAIVE_DATETIME:
        return datetime.datetime.fromisoformat(payload.decode('ascii'))
    return msgpack.ExtType(code, payload)


def _tuple_keys(pairs):
    # a dict keyed by tuples arrives with list keys, which cannot be hashed
    return {tuple(k) if isinstance(k, list) else k: v for k, v in pairs}


def decode_data(raw):
    """The inverse of encode_message's data bytes (runs per delivery)."""
    try:
        return msgpack.unpackb(raw, raw=False, timestamp=3, strict_map_key=False,
                               ext_hook=_ext)
    except TypeError:
        return msgpack.unpackb(raw, raw=False, timestamp=3, strict_map_key=False,
                               ext_hook=_ext, object_pairs_hook=_tuple_keys)


def is_term_id(t):
    return type(t) is int and 0 < t <= MAX_TERM_ID


def is_entry(e):
    """Well-formed stream entry [pos, seq, key, data, term_id]? (checked once
    per entry at the edge; elements a later minor version appends are
    allowed, and readers take the first five)"""
    return (isinstance(e, (list, tuple)) and len(e) >= 5
            and type(e[0]) is int and e[0] > 0 and type(e[1]) is int
            and isinstance(e[2], (list, tuple))
            and all(isinstance(k, str) for k in e[2])
            and isinstance(e[3], bytes) and is_term_id(e[4]))


def is_replay_answer(a):
    """Well-formed answer of replay: [stream_id, first_pos, last_pos, entries]?
    (the entries are checked one by one, as a stream event's)"""
    return (isinstance(a, (list, tuple)) and len(a) == 4 and isinstance(a[3], list)
            and all(type(x) is int for x in a[1:3]))


def is_producer_id(p):
    return isinstance(p, str) and 0 < len(p) <= MAX_PRODUCER_ID


def is_submission(m):
    """Well-formed submitted message [producer_seq, key, data]?"""
    return (isinstance(m, (list, tuple)) and len(m) == 3
            and type(m[0]) is int and m[0] > 0
            and isinstance(m[1], (list, tuple))
            and all(isinstance(k, str) for k in m[1])
            and isinstance(m[2], bytes)
            and key_size(m[1], 'surrogatepass') <= MAX_KEY_BYTES)


def handshake():
    """The keyword arguments of a master's info() call: its protocol version."""
    return {'protocol': list(PROTOCOL)}


def offered_protocol(kwargs):
    """The (major, minor) a caller's info() keywords offer: ``UNVERSIONED``
    when it sent none (a release before 0.5.0), None when malformed."""
    offered = kwargs.get('protocol')
    if offered is None:
        return UNVERSIONED
    if isinstance(offered, (list, tuple)) and len(offered) == 2 and \
            all(type(n) is int and 0 <= n < 2 ** 31 for n in offered):
        return tuple(offered)
    return None


def version_text(protocol):
    """'2.0', or '1 (a release before 0.5.0)' for a peer that sent none."""
    if tuple(protocol) == UNVERSIONED:
        return "1 (a release before 0.5.0)"
    return '.'.join(str(n) for n in protocol)
