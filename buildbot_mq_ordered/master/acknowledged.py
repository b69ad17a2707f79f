"""What the journal acknowledged to this master's producer, and what it
lost of it. Pure: owned by the ``Producer``.

The sequencer answers a submit with ``[producer_mark, last_pos,
prior_mark]``: prior_mark is the producer's mark in the journal before
the batch. Below what was acknowledged here, the journal lost acknowledged
messages with its tail (its database failed over to a replica that was
behind, it was restored from an older copy, or replaced). This master
forgets a message once it is acknowledged, so it cannot submit them
again: it says which are lost, once.
"""

from collections import namedtuple

from buildbot_mq_ordered import wire
from buildbot_mq_ordered.master.actions import Report

# a submit answer, as this release's sequencer sends it
SubmitAnswer = namedtuple('SubmitAnswer', 'mark last_pos prior')


def _count(x):
    return type(x) is int and x >= 0


def submit_answer(result):
    """The SubmitAnswer of a submit call's result, or None if it is not one
    (a sequencer of another release: issue 23 brings the handshake)."""
    # a later minor version may append elements: the first three are ours
    if not isinstance(result, (list, tuple)) or len(result) < 3:
        return None
    mark, last_pos, prior = result[:3]
    if not (_count(mark) and _count(prior) and (last_pos is None or _count(last_pos))):
        return None
    return SubmitAnswer(mark, last_pos, prior)


class Acknowledged:
    """The highest producer sequence number acknowledged to this master
    (``mark``; never beyond what it sent), the stream position of the
    newest acknowledged message (``pos``, 0 if not known), and how many
    acknowledged messages the journal lost (``lost``)."""

    def __init__(self):
        self.mark = 0
        self.pos = 0
        self.lost = 0

    def answered(self, answer, sent, producer_id, first_retained):
        """A SubmitAnswer; sent: the highest producer_seq this master sent;
        first_retained: the journal's oldest position as last heard.
        Returns the report of a loss, if any."""
        out = []
        if answer.prior < self.mark:
            if not self._expired(first_retained):
                out.append(self._lost(answer.prior + 1, self.mark, producer_id))
            # the journal numbers on from its own mark
            self.mark = answer.prior
        self.mark = max(self.mark, min(answer.mark, sent))
        if answer.last_pos:
            self.pos = answer.last_pos
        return out

    def _expired(self, first_retained):
        """The journal forgets a producer's mark ``retention_seconds`` after
        its last use, as it forgets that use's entries: a master that
        produced nothing for that long finds its mark gone, not lost."""
        return 0 < self.pos < first_retained

    def _lost(self, first, last, producer_id):
        n = last - first + 1
        self.lost += n
        return Report('error', (
            f"ordered-wamp: the journal lost {n} messages it had acknowledged to this "
            f"master: producer id {wire.shown(producer_id)}, producer sequence numbers "
            f"{first}..{last} are no longer in it (it lost its tail: its database failed "
            "over to a replica that was behind, or it was restored from an older copy or "
            "replaced); this master keeps no acknowledged message, so they are not "
            "submitted again: lost"))
