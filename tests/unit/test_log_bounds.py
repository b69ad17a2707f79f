"""Log lines stay short whatever a routing key, data or an error quotes.

Issue 21: a rejected 17 MiB routing key made one 17.8 MB log line on the
master; 2,000 keys of 9 KB made 18.5 MB of log. ``wire.shown`` cuts what
a line quotes; one test per kind of line that quotes a key, data or a
text from the other side."""

from autobahn.wamp.exception import ApplicationError
import msgpack
from twisted.internet import defer
from twisted.internet import task
from twisted.python import log
from twisted.trial import unittest

from buildbot_mq_ordered import wire
from buildbot_mq_ordered.master.actions import Report
from buildbot_mq_ordered.master.consumers import ConsumerRegistry
from buildbot_mq_ordered.master.dispatch import Dispatcher
from buildbot_mq_ordered.master.follower import StreamFollower
from buildbot_mq_ordered.master.producer import Producer
from buildbot_mq_ordered.master.streamreader import HEARTBEAT
from buildbot_mq_ordered.master.streamreader import StreamReader
from buildbot_mq_ordered.master.submitter import Submitter
from buildbot_mq_ordered.util.backoff import Backoff

HUGE = 17 * 2 ** 20
# the longest a line may get: its own words and two cut quotations
BOUND = 1000


class Lines(unittest.TestCase):
    """Collects what is logged: log.msg lines and log.err errors."""

    def setUp(self):
        self.events = []
        log.addObserver(self.events.append)
        self.addCleanup(log.removeObserver, self.events.append)

    def lines(self):
        """Every line logged so far (errors flushed, so that they pass)."""
        said = [' '.join(e['message']) for e in self.events if e.get('message')]
        return said + [str(f.value) for f in self.flushLoggedErrors()]

    def assertBounded(self, lines, *parts):
        self.assertTrue(lines)
        for line in lines:
            self.assertLess(len(line), BOUND, line[:300])
        text = '\n'.join(lines)
        for part in parts:
            self.assertIn(part, text)

    def report_texts(self, actions):
        return [a.text for a in actions if isinstance(a, Report)]


class Shown(unittest.TestCase):

    def test_short_text_is_as_it_is(self):
        self.assertEqual(wire.shown('abc'), 'abc')
        self.assertEqual(wire.shown('x' * wire.SHOWN), 'x' * wire.SHOWN)

    def test_anything_else_is_its_repr(self):
        self.assertEqual(wire.shown(('a', 'b')), "('a', 'b')")
        self.assertEqual(wire.shown(None), 'None')
        self.assertEqual(wire.shown(b'\x00'), "b'\\x00'")

    def test_long_text_is_cut_saying_how_long_it_was(self):
        text = wire.shown('y' * (wire.SHOWN + 1))
        self.assertEqual(text, 'y' * wire.SHOWN + f"... [cut: {wire.SHOWN + 1} "
                                                  "characters in all]")
        self.assertEqual(wire.shown(['z' * 10 ** 6], limit=5),
                         "['zzz... [cut: 1000004 characters in all]")


class ProducerRejections(Lines):

    def test_a_huge_key_is_cut(self):
        p = Producer()
        (line,) = self.report_texts(p.produce(('k' * HUGE,), {}, 2 ** 20))
        self.assertBounded([line], "ordered-wamp: dropped message ('kkk",
                           f"[cut: {HUGE + 5} characters in all]",
                           f"routing key of {HUGE} bytes exceeds the sequencer's limit")

    def test_keys_of_9_kb_give_lines_of_a_few_hundred_characters(self):
        p = Producer()
        lines = [t for i in range(2000)
                 for t in self.report_texts(p.produce(('%d' % i + 'k' * 9000,), {}, 2 ** 20))]
        self.assertEqual(len(lines), 2000)
        self.assertLess(sum(map(len, lines)), 2000 * 400)

    def test_a_huge_key_of_the_wrong_type_is_cut(self):
        p = Producer()
        (line,) = self.report_texts(p.produce('k' * HUGE, {}, 2 ** 20))
        self.assertBounded([line], "dropped message 'kkk",
                           "routing key must be a tuple of strings")


class DispatchErrors(Lines):

    def test_undecodable_data_quoted_by_its_error_is_cut(self):
        registry = ConsumerRegistry(lambda qref, key, data: None)
        registry.add(lambda key, data: None, ('k',))
        # a naive datetime that is no ISO text: the error quotes all of it
        raw = msgpack.packb(msgpack.ExtType(wire.NAIVE_DATETIME, b'x' * HUGE))
        Dispatcher(registry).deliver([[1, 1, ['k'], raw]])
        self.assertBounded(self.lines(), "ignored stream position 1: undecodable data",
                           "characters in all]")


class FollowerReports(Lines):

    def test_a_huge_stream_id_is_cut(self):
        f = StreamFollower()
        f.on_join('s' * HUGE, 1, 0)
        f.on_leave()
        lines = self.report_texts(f.on_join('t' * HUGE, 1, 0))
        lines += self.report_texts(f.on_info('t' * HUGE, 1, -1))     # shorter
        self.assertEqual(len(lines), 2)
        self.assertBounded(lines, "now serves stream ttt", "not stream sss",
                           "ends at position -1")

    def test_a_huge_replay_failure_is_cut(self):
        f = StreamFollower()
        f.on_join('s1', 1, 0)
        (replay,) = f.on_info('s1', 1, 3)
        lines = self.report_texts(f.on_replay_failed(replay.token, 'r' * HUGE))
        self.assertBounded(lines, "ordered-wamp: replay failed (rrr", "; retrying in 1.0s")


class Session:
    def __init__(self, failure):
        self.failure = failure

    def call(self, procedure, *args, **kwargs):
        return defer.fail(self.failure)


class Reader:
    def __init__(self, session):
        self.session = session

    def no_sequencer(self, failure):
        return False


class SubmitFailures(Lines):

    def submit(self, failure):
        clock = task.Clock()
        producer = Producer(backoff=Backoff(0.5, 1.5, 10.0))
        producer.produce(('k',), {}, 2 ** 20)
        submitter = Submitter(producer, 'p1', Reader(Session(failure)), lambda: 'ws://r/ws',
                              clock=clock)
        submitter.flush()
        submitter.stop()

    def test_a_huge_refusal_text_is_cut(self):
        self.submit(ApplicationError(wire.JOURNAL_ERROR, 'j' * HUGE))
        self.assertBounded(self.lines(), "refused a submit (buildbot.mq.ordered.error.journal: "
                                         "jjj", "characters in all]); 1 messages wait")

    def test_a_huge_lost_call_text_is_cut(self):
        self.submit(ApplicationError(ApplicationError.CANCELED, 'c' * HUGE))
        self.assertBounded(self.lines(), "ordered-wamp: submit failed (", "ccc",
                           "characters in all]); retrying")


class InfoFailures(Lines):

    def test_a_huge_info_failure_is_cut(self):
        clock = task.Clock()

        class Joined:
            infos = 0

            def subscribe(self, handler, topic, options=None):
                return defer.succeed(None)

            def call(self, procedure, *args, **kwargs):
                self.infos += 1
                if self.infos == 1:
                    return defer.succeed({'stream_id': 's1', 'first_pos': 1, 'head': 0})
                return defer.fail(ApplicationError('wamp.error.runtime_error', 'i' * HUGE))

        reader = StreamReader(StreamFollower(), lambda entries: None, None, None, clock=clock)
        reader.join(Joined(), lambda: True)
        clock.advance(HEARTBEAT)
        reader.leave()
        self.assertBounded(self.lines(), "ordered-wamp: info failed (", "iii",
                           "characters in all])")
