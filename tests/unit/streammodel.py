"""A model of the sequencer and of one master's network, against which
tests/unit/test_follower.py drives a ``StreamFollower`` (pure: no reactor).

The sequencer has one stream at a time, its journal retained from
first_pos, and terms: a leader takes over at the head, or from an older
copy of the journal (an asynchronous replica promoted, a backup restored):
the tail after the copy is gone and the new term numbers from the copy's
head on. Answers (info, replay) are computed when they are given, or for a
replay from the state when it was asked.

The master records, for every position of the stream it follows, what it
did there: delivered it (under which term) or passed it (started after it,
skipped it; under the term its follower believed then). A rewritten-tail
report must name the first position where what it did differs from the
journal, with the right counts; at the end, what it did must be the
journal's history.
"""

import re

from buildbot_mq_ordered import wire
from buildbot_mq_ordered.master.actions import AskInfo
from buildbot_mq_ordered.master.actions import Deliver
from buildbot_mq_ordered.master.actions import Replay
from buildbot_mq_ordered.master.actions import Report
from buildbot_mq_ordered.master.actions import RetryLater
from buildbot_mq_ordered.master.follower import StreamFollower
from buildbot_mq_ordered.master.lineage import term_at

# the journal tells its most recent terms (wire.MAX_TERMS)
MAX_TERMS = 32

REWRITTEN = re.compile(r"rewritten from position (\d+) .* had delivered (\d+) messages at "
                       r"positions (\d+)\.\.(\d+) .* holds (\d+) messages from position \d+ "
                       r"\(its head is (\d+)\)")
SKIPPED = re.compile(r"stream positions (\d+)\.\.(\d+) ")
NEW_STREAM = re.compile(r"delivering the new stream from its position (\d+)")


def entry(pos, term=1):
    """What the journal holds at pos under term (the data tells the term)."""
    return [pos, pos, ['k', str(pos % 3)], b'%d/%d' % (pos, term), term]


_is_entry = wire.is_entry


def is_entry_with_term(e):
    """wire.is_entry for [pos, seq, key, data, term], where wire.py checks
    4 elements still (the router's side of issue 22 brings the 5th)."""
    return (isinstance(e, (list, tuple)) and len(e) == 5 and type(e[4]) is int and e[4] > 0
            and _is_entry(e[:4]))


def with_terms(testcase):
    """Let testcase's followers take entries with a term."""
    if not wire.is_entry(entry(1)):
        testcase.patch(wire, 'is_entry', is_entry_with_term)


class Sequencer:
    """What the followers are told about."""

    def __init__(self):
        self.streams = 0
        self.term_ids = 0
        self.published = set()    # (pos, term) of every entry ever published
        self.new_stream()

    def new_stream(self):
        self.streams += 1
        self.stream_id = f'stream-{self.streams}'
        self.head = 0
        self.first_pos = 1
        self.terms = [(self._term_id(), 1)]
        self.copies = [self.state()]

    def _term_id(self):
        # random-looking, never repeated
        self.term_ids += 1
        return (self.term_ids * 7919) % 1000003 + 1

    def state(self):
        return (self.stream_id, self.first_pos, self.head, list(self.terms))

    def term_at(self, pos):
        return term_at(self.terms, pos)

    def entry(self, pos):
        return entry(pos, self.term_at(pos))

    def publish(self, n):
        first = self.head + 1
        self.head += n
        out = [self.entry(p) for p in range(first, self.head + 1)]
        self.published.update((e[0], e[4]) for e in out)
        return out

    def prune(self, n):
        self.first_pos = min(self.first_pos + n, self.head + 1)

    def copy(self):
        """A replica's or a backup's state of the journal, as it is now."""
        self.copies.append(self.state())

    def take_over(self, copy=None):
        """A new leader's term, from the journal as it is or from a copy of
        it (its tail after the copy is gone)."""
        if copy is not None:
            _, self.first_pos, self.head, terms = copy
            self.terms = list(terms)
        self.terms.append((self._term_id(), self.head + 1))

    def info(self, state=None):
        stream_id, first_pos, head, terms = state or self.state()
        return stream_id, first_pos, head, terms[-MAX_TERMS:]

    def answer(self, first, count, cut, state=None):
        """As Sequencer.replay: bounded by count, and by bytes (``cut``)."""
        stream_id, first_pos, head, terms = state or self.state()
        start = max(first, first_pos)
        last = min(first + count - 1, head)
        entries = [entry(p, term_at(terms, p)) for p in range(start, last + 1)]
        if len(entries) > 1 and cut:
            entries = entries[:max(1, len(entries) - cut)]
        return [stream_id, first_pos, head, entries]


DELIVERED = 'delivered'
PASSED = 'passed'


class Master:
    """A follower, its network (events, replays and info() asked, not yet
    answered) and what it did at each position, checked at every step."""

    def __init__(self, test, seq):
        self.test = test
        self.seq = seq
        self.follower = StreamFollower(capacity=8, backoff=lambda n: n)
        self.session = 0          # bumps on every join
        self.inbox = []           # stream events published while joined
        self.replays = []         # (session, Replay, the sequencer's state when asked)
        self.infos = []           # (session, AskInfo) not yet answered
        self.retries = 0          # RetryLater timers pending
        self.did = {}             # position -> (DELIVERED or PASSED, term)
        self.rewrites = 0         # rewritten-tail errors
        self.answered_first_pos = None   # of the replay answer being taken

    @property
    def next(self):
        """The next position to deliver: what it did covers 1.. without a gap."""
        return len(self.did) + 1

    def act(self, actions):
        f, t = self.follower, self.test
        for a in actions:
            if isinstance(a, Deliver):
                self._delivered(a.entries)
            elif isinstance(a, (Replay, AskInfo)):
                # one in flight at a time (a new stream or term makes the
                # follower forget the one in flight)
                asked = self.replays if isinstance(a, Replay) else self.infos
                now = (self.session, f.stream_id, f.placement.lineage.current)
                t.assertEqual([r for when, r, *_ in asked if when == now], [],
                              "a second ask while one is in flight")
                t.assertTrue(f.joined)
                if isinstance(a, Replay):
                    t.assertLessEqual(a.count, wire.MAX_REPLAY)
                    self.replays.append((now, a, self.seq.state()))
                else:
                    self.infos.append((now, a))
            elif isinstance(a, RetryLater):
                self.retries += 1
            else:
                t.assertIsInstance(a, Report)
                self._reported(a)
        t.assertEqual(sorted(self.did), list(range(1, self.next)))

    def _delivered(self, entries):
        t = self.test
        for e in entries:
            t.assertEqual(self.follower.stream_id, self.seq.stream_id)
            t.assertIn((e[0], e[4]), self.seq.published)         # as published
            t.assertEqual(e, entry(e[0], e[4]))
            t.assertEqual(e[0], self.next, "delivered out of order, twice or after a gap")
            self.did[e[0]] = (DELIVERED, e[4])

    def _passed(self, first, last):
        # under the terms its follower believes now (as its Lineage does)
        journal = self.follower.placement.lineage.journal or ()
        for p in range(first, last + 1):
            self.did[p] = (PASSED, term_at(journal, p))

    def _reported(self, a):
        t, text = self.test, a.text
        t.assertNotIn('ends at position', text)   # every tail lost is a new term
        rewritten = REWRITTEN.search(text)
        new_stream = NEW_STREAM.search(text)
        skipped = SKIPPED.search(text)
        if rewritten:
            self._rewritten(a, *(int(g) for g in rewritten.groups()))
        elif new_stream:
            self.did = {}
            self._passed(1, int(new_stream.group(1)) - 1)
        elif skipped and 'skipped' in text:
            first, last = (int(g) for g in skipped.groups())
            # only what retention removed may be skipped (in the journal
            # the replay answer came from)
            t.assertLess(last, self.answered_first_pos, text)
            t.assertEqual(first, self.next)
            self._passed(first, last)

    def _rewritten(self, a, first, delivered, first_again, last, holds, head):
        """One report per rewrite: at the first position where what this
        master did is not the journal's (as the info() it just had says)."""
        t, truth = self.test, self.seq.term_at
        t.assertEqual((first_again, last), (first, self.next - 1), a.text)
        for p in range(1, first):
            kind, term = self.did[p]
            if term is not None:
                t.assertEqual(term, truth(p), f"{kind} at {p}, below {first}: {a.text}")
        t.assertNotEqual(self.did[first][1], truth(first), a.text)
        t.assertEqual(delivered, sum(1 for p in range(first, last + 1)
                                     if self.did[p][0] == DELIVERED), a.text)
        t.assertEqual((holds, head), (max(0, self.seq.head - first + 1), self.seq.head))
        t.assertEqual(a.level, 'error' if delivered else 'info')
        self.rewrites += a.level == 'error'
        for p in range(first, last + 1):
            del self.did[p]

    def join(self):
        self.session += 1
        self.inbox = []
        first_join = self.follower.stream_id is None
        stream_id, first_pos, head, terms = self.seq.info()
        actions = self.follower.on_join(stream_id, first_pos, head, terms)
        if first_join:
            self._passed(1, self.follower.next_pos - 1)
        self.act(actions)

    def leave(self):
        self.inbox = []
        self.act(self.follower.on_leave())

    def answer(self, i, cut, fail, late):
        """Replay i answered (from the state when it was asked, if late), or failed."""
        _, r, then = self.replays.pop(i)
        self.answered_first_pos = (then if late else self.seq.state())[1]
        if fail:
            self.act(self.follower.on_replay_failed(r.token, 'busy'))
        else:
            self.act(self.follower.on_replay(
                r.token, self.seq.answer(r.first, r.count, cut, then if late else None)))

    def answer_info(self, i, fail):
        _, ask = self.infos.pop(i)
        if fail:
            self.act(self.follower.on_info_failed(ask.token, 'busy'))
        else:
            self.act(self.follower.on_info(*self.seq.info(), token=ask.token))

    def heartbeat(self):
        """info() every few seconds: its answer travels behind the events
        published before it, so those come first."""
        while self.inbox and self.follower.joined:
            self.act(self.follower.on_event(*self.inbox.pop(0)))
        self.act(self.follower.on_info(*self.seq.info()))

    def settle(self):
        """Join if need be, then let every event, replay, info() and retry
        happen, and a heartbeat: the follower must reach the head (bounded:
        a stall fails) with the journal's history."""
        if not self.follower.joined:
            self.join()
        beat = False
        for _ in range(10000):
            if self.inbox:
                self.act(self.follower.on_event(*self.inbox.pop(0)))
            elif self.replays:
                self.answer(0, 0, False, False)
            elif self.infos:
                self.answer_info(0, False)
            elif self.retries:
                self.retries -= 1
                self.act(self.follower.retry())
            elif not beat:
                beat = True
                self.heartbeat()
            else:
                break
        t, seq = self.test, self.seq
        t.assertEqual(self.follower.next_pos, seq.head + 1, "stalled")
        t.assertEqual(self.next, seq.head + 1)
        for p in range(1, seq.head + 1):
            kind, term = self.did[p]
            if kind == DELIVERED or (term is not None and p >= seq.first_pos):
                t.assertEqual(term, seq.term_at(p), f"{kind} at {p}")
        t.assertTrue(self.follower.caught_up)
