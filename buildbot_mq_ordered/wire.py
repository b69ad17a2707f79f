"""What travels between masters and the sequencer: URIs and message checks.

Routing keys travel as lists inside the payload (never encoded into a WAMP
URI), so any string element round-trips: dots, '#', '*', spaces, ''.
Message data travels as its JSON text: the router and the sequencer never
parse it, and a consumer decodes it only when a local consumer matches.

submit(producer_id, [[producer_seq, key, data_json], ...])
    -> [producer_mark, last_pos]: the highest producer_seq sequenced for
       producer_id, and the position of the batch's last new message (or None)
replay(from_pos, limit) -> [first_pos, last_pos, [entry, ...]]
    first_pos: oldest position still in the history; last_pos: the head
stream event: [entry, ...]  with entry = [pos, seq, key, data_json]
"""

import json

PREFIX = 'buildbot.mq.ordered.'
SUBMIT = PREFIX + 'submit'
REPLAY = PREFIX + 'replay'
STREAM = PREFIX + 'stream'
# the router discloses the publisher's role on stream events; only this one counts
SEQUENCER_ROLE = 'sequencer'

# the most entries one replay call returns (the sequencer caps it too)
MAX_REPLAY = 5000


class MessageRejected(ValueError):
    """A produced message that cannot be sent; the reason says why."""


def encode_message(routing_key, data, max_size, default=None):
    """(key list, data JSON, size in bytes) for a produced message, or
    MessageRejected saying why.

    ``default`` converts what JSON lacks (Buildbot passes its datetime
    handling). No buildbot import here: the router host needs none.
    """
    if not isinstance(routing_key, (tuple, list)) or not all(
            isinstance(k, str) for k in routing_key):
        raise MessageRejected("routing key must be a tuple of strings")
    try:
        text = json.dumps(data, default=default, ensure_ascii=False,
                          separators=(',', ':'))
        # what UTF-8 cannot carry (lone surrogates) no serializer can send
        size = len(text.encode('utf-8'))
        '\x00'.join(routing_key).encode('utf-8')
    except (TypeError, ValueError, RecursionError) as e:
        raise MessageRejected(f"data is not JSON-serialisable: {e}") from e
    if size > max_size:
        raise MessageRejected(
            f"message of {size} bytes exceeds max_message_size ({max_size})")
    return list(routing_key), text, size


# the inverse of encode_message's data text (a plain alias: it runs per delivery)
decode_data = json.loads


def is_entry(e):
    """Well-formed stream entry? (checked once per entry at the edge)"""
    return (isinstance(e, (list, tuple)) and len(e) == 4
            and type(e[0]) is int and e[0] > 0 and type(e[1]) is int
            and isinstance(e[2], (list, tuple))
            and all(isinstance(k, str) for k in e[2])
            and isinstance(e[3], str))


def is_submission(m):
    """Well-formed submitted message [producer_seq, key, data_json]?"""
    return (isinstance(m, (list, tuple)) and len(m) == 3
            and type(m[0]) is int and m[0] > 0
            and isinstance(m[1], (list, tuple))
            and all(isinstance(k, str) for k in m[1])
            and isinstance(m[2], str))
