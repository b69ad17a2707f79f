"""Masters producing at a steady rate while their journal's tail is
rewritten (its database failed over to a replica that was behind, or the
journal restored from an older copy): load nodes in processes of their own
(``load/nodes.py``), the fault's steps at set moments, and an end that
waits for the journal to settle and every master to have taken it up.

A node here has no total to reach by itself: how many deliveries a master
makes depends on the tail it had delivered before the rewrite. So the run
ends when the journal holds every producer's last message and every master
delivered at least its head and then nothing more for ``QUIET`` seconds;
each node is then told to finish where it is (``EXPECT``). What each
delivered is judged by ``tailcheck.judge`` against that journal."""

import os
import shutil
import sqlite3
import tempfile
import time

from twisted.internet import threads

from buildbot_mq_ordered.load.nodes import NodeProcess
from buildbot_mq_ordered.load.nodes import drive
from buildbot_mq_ordered.wire import decode_data
from tests.support.tailcheck import judge

MASTERS = 3
NODE_TIMEOUT = 150       # a node's own bound on its run
RUN_TIMEOUT = 150        # the whole run, start-up included
SETTLE_TIMEOUT = 40      # after production: the journal holds it all, the masters too
QUIET = 2.0              # a master that delivered nothing for this long is done
TICK = 0.05
NEVER = 10 ** 9          # no node ends by count until told
READ_EVERY = 0.2         # how often the settling journal is read


def entries_pg(url):
    """Reads the journal's entries after a position, on PostgreSQL."""
    def read(after):
        import psycopg
        with psycopg.connect(url, connect_timeout=5) as db:
            rows = db.execute("SELECT pos, data FROM entries WHERE pos > %s ORDER BY pos",
                              (after,)).fetchall()
        return [(pos, _message(data)) for pos, data in rows]
    return read


def entries_sqlite(path):
    """Reads the journal's entries after a position, in a SQLite file."""
    def read(after):
        db = sqlite3.connect(f'file:{path}?mode=ro', uri=True, timeout=5)
        try:
            rows = db.execute("SELECT pos, data FROM entries WHERE pos > ? ORDER BY pos",
                              (after,)).fetchall()
        finally:
            db.close()
        return [(pos, _message(data)) for pos, data in rows]
    return read


def _message(data):
    message = decode_data(bytes(data))
    return (message['p'], message['i'])


def log_count(path, marker):
    """Lines of a node's log that hold marker."""
    try:
        with open(path, errors='replace') as f:
            return sum(marker in line for line in f)
    except OSError:
        return 0


class MastersOverRewrite:
    """The load nodes of one run and what happened: when each step ran
    (``at``), steps that ran only after production (``late``), the
    journal the masters end on (``journal``), the nodes' results."""

    def __init__(self, testcase, router_urls, read_journal, per_master, rate,
                 masters=MASTERS):
        tmp = tempfile.mkdtemp(prefix='bmo-tail-')
        testcase.addCleanup(shutil.rmtree, tmp, True)
        self.read_journal = read_journal
        self.nodes = [NodeProcess(router_urls, f'm{i}', os.path.join(tmp, f'm{i}.json'),
                                  messages=per_master, expect=NEVER, rate=rate,
                                  shared_keys=7, index=i, nodes=masters,
                                  timeout=NODE_TIMEOUT)
                      for i in range(masters)]
        for n in self.nodes:
            testcase.addCleanup(n.stop)
        self.at, self.late, self.journal, self.results = {}, [], [], None
        self._read_at = 0.0
        self.phases = {}         # phase -> seconds since the run began

    def run(self, start_after, steps):
        """A Deferred of the nodes' results. ``steps``: [(seconds after the
        step before, name, action)]; the first once every master delivered
        ``start_after`` messages."""
        return threads.deferToThread(self._run, start_after, list(steps))

    def _run(self, start_after, steps):
        began = time.monotonic()
        deadline = began + RUN_TIMEOUT

        def phase(name):
            self.phases[name] = round(time.monotonic() - began, 1)
        try:
            self._wait(lambda: all(n.ready for n in self.nodes), deadline, "nodes ready")
            phase('ready')
            for n in self.nodes:
                n.go()
            self._wait(lambda: self._produced() and not steps, deadline,
                       "production and the fault's steps", lambda: self._tick(steps, start_after))
            phase('produced')
            settle = min(deadline, time.monotonic() + SETTLE_TIMEOUT)
            self._wait(self._journal_settled, settle, "every producer's last message journaled")
            phase('journaled')
            self._wait(self._masters_quiet(), settle, "every master at the head and quiet")
            phase('delivered')
        finally:
            for _, name, action in steps:      # the fault must end, whatever happened
                self.late.append(name)
                self._step(name, action)
            self._finish(deadline)
        return self.results

    def _wait(self, condition, deadline, what, on_tick=None):
        if not drive(self.nodes, condition, deadline, on_tick, tick=TICK):
            raise AssertionError(f"run bound passed waiting for: {what}")

    def _produced(self):
        for n in self.nodes:
            if n.done and n.produced_final is None:
                n.produced_final = n.progress[1]   # it died: what it last reported
        return all(n.produced_final is not None for n in self.nodes)

    def _tick(self, steps, start_after):
        if not steps:
            return
        delay = steps[0][0]
        if (min(n.progress[0] for n in self.nodes) >= start_after if not self.at
                else time.monotonic() >= max(self.at.values()) + delay):
            self._step(*steps.pop(0)[1:])

    def _step(self, name, action):
        action()
        self.at[name] = time.monotonic()
        self.phases[name] = round(self.at[name] - min(self.at.values()), 1)

    def _journal_settled(self):
        if time.monotonic() - self._read_at < READ_EVERY:
            return False
        self._read_at = time.monotonic()
        self.journal += self.read_journal(self.journal[-1][0] if self.journal else 0)
        held = {message for _, message in self.journal}
        return all((n.name, n.produced_final - 1) in held
                   for n in self.nodes if n.produced_final)

    def _masters_quiet(self):
        last = {}

        def quiet():
            now = time.monotonic()
            for n in self.nodes:
                if last.get(n.name, (None,))[0] != n.progress[0]:
                    last[n.name] = (n.progress[0], now)
            head = len(self.journal)
            return all(n.progress[0] >= head and now - last[n.name][1] >= QUIET
                       for n in self.nodes)
        return quiet

    def _finish(self, deadline):
        for n in self.nodes:
            n.send_expect(max(1, n.progress[0]))
        drive(self.nodes, lambda: all(n.done for n in self.nodes),
              max(deadline, time.monotonic() + 30))
        for n in self.nodes:
            n.stop()
        self.results = [n.result() if os.path.exists(n.out) else None for n in self.nodes]

    def outcome(self, tail_error):
        """(figures, problems) of the run: ``tailcheck.judge`` on what the
        masters delivered against the journal they ended on; ``tail_error``:
        what marks the rewritten-tail error in a master's log."""
        records = {n.name: r for n, r in zip(self.nodes, self.results)}
        produced = {n.name: (r['produced'] if r else n.produced_final or 0)
                    for n, r in zip(self.nodes, self.results)}
        errors = {n.name: log_count(n.log_path, tail_error) for n in self.nodes}
        return judge(self.journal, records, produced, errors)
