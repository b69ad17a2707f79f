"""``buildbot-mq-ordered tail`` against a real router, in its own process:
the journal first, then live, exactly the produced messages in stream order."""

import json
import os
import signal
import sys

from twisted.internet import defer
from twisted.internet import protocol
from twisted.internet import reactor
from twisted.trial import unittest

from tests.support.router import shared_router
from tests.support.util import Collector
from tests.support.util import start_master
from tests.support.util import with_timeout


class Lines(protocol.ProcessProtocol):
    """stdout lines of a process; wait_for(n) fires once n arrived."""

    def __init__(self):
        self.lines = []
        self.err = b''
        self._buf = b''
        self._waiters = []
        self.ended = defer.Deferred()

    def outReceived(self, data):
        self._buf += data
        *done, self._buf = self._buf.split(b'\n')
        self.lines += [d.decode() for d in done]
        for n, d in list(self._waiters):
            if len(self.lines) >= n:
                self._waiters.remove((n, d))
                d.callback(self.lines)

    def errReceived(self, data):
        self.err += data

    def wait_for(self, n):
        if len(self.lines) >= n:
            return defer.succeed(self.lines)
        d = defer.Deferred()
        self._waiters.append((n, d))
        return with_timeout(d, 60, f"{n} lines of tail (have {len(self.lines)})")

    def processEnded(self, reason):
        self.ended.callback(reason.value.exitCode)


def spawn_tail(testcase, *args):
    lines = Lines()
    proc = reactor.spawnProcess(
        lines, sys.executable, [sys.executable, '-m', 'buildbot_mq_ordered.cli', 'tail', *args],
        env=os.environ.copy())

    def cleanup():
        if lines.ended.called:
            return None
        proc.signalProcess('KILL')
        return lines.ended
    testcase.addCleanup(cleanup)
    return lines, proc


class TailCommand(unittest.TestCase):
    timeout = 120

    @defer.inlineCallbacks
    def test_journal_then_live_exactly_what_was_produced_in_order(self):
        router = shared_router()
        m = yield start_master(self, router)
        got = Collector(m)
        yield with_timeout(m.startConsuming(got, ('tail', None, 'new')), what='the join')
        for i in range(5):
            m.produce(('tail', str(i), 'new'), {'i': i, 'blob': b'\x00\x01'})
            m.produce(('tail', str(i), 'other'), {'i': i})     # filtered out
        yield got.wait_for(5)
        first = got.received[0][2][0]
        out, proc = spawn_tail(self, '--router', router.url, '--from', str(first),
                               '--filter', 'tail.*.new', '--json')
        yield out.wait_for(5)
        for i in range(5, 8):
            m.produce(('tail', str(i), 'new'), {'i': i, 'blob': b'\x00\x01'})
        yield got.wait_for(8)
        yield out.wait_for(8)
        proc.signalProcess(signal.SIGINT)       # Ctrl-C
        code = yield with_timeout(out.ended, 30, 'tail to end on Ctrl-C')
        self.assertEqual(code, 0, out.err.decode()[-2000:])
        printed = [json.loads(t) for t in out.lines]
        self.assertEqual([(p['pos'], p['seq'], tuple(p['key']), p['data']['i'])
                          for p in printed],
                         [(pos, seq, key, data['i']) for key, data, (pos, seq) in got.received])
        self.assertEqual(printed[0]['data']['blob'], str(b'\x00\x01'))

    @defer.inlineCallbacks
    def test_last_n_in_text(self):
        router = shared_router()
        m = yield start_master(self, router)
        got = Collector(m)
        yield with_timeout(m.startConsuming(got, ('tailtext', None)), what='the join')
        for i in range(3):
            m.produce(('tailtext', str(i)), {'i': i})
        yield got.wait_for(3)
        out, proc = spawn_tail(self, '--router', router.url, '--last', '2',
                               '--filter', 'tailtext.*')
        yield out.wait_for(1)
        proc.signalProcess(signal.SIGINT)
        yield with_timeout(out.ended, 30, 'tail to end on Ctrl-C')
        # the last 2 of the stream may include other tests' messages: only
        # this test's last message is certain to be among them
        (pos, seq), = [d for k, _, d in got.received if k == ('tailtext', '2')]
        self.assertIn(f"{pos:>8} {seq:>6}  tailtext.2  " + '{"i": 2}', out.lines)
