"""The ``demo`` and ``bench`` commands, run as a user runs them (subprocesses),
at a small size: they pass, print their tables, write their figures, and
leave no process behind - also when interrupted."""

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

import psutil
from twisted.trial import unittest

from buildbot_mq_ordered.load.processes import free_port

CLI = [sys.executable, '-m', 'buildbot_mq_ordered.cli']


def run_cli(*args, timeout=240):
    proc = subprocess.run(CLI + list(args), stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, timeout=timeout)
    return proc.returncode, proc.stdout.decode(errors='replace')


class Demo(unittest.TestCase):
    timeout = 300

    def test_small_demo_passes(self):
        rc, out = run_cli('demo', '--masters', '3', '--messages', '300', '--duration', '2')
        self.assertEqual(rc, 0, out)
        # the verification table: a header and one row per master
        self.assertRegex(out, r'master\s+produced\s+delivered\s+lost\s+duplicated\s+order'
                              r'\s+msg/s\s+p50 ms\s+p99 ms')
        for i in (1, 2, 3):
            self.assertRegex(out, rf'master-{i}\s+100\s+300\s+0\s+0\s+same\s')
        self.assertIn('order: all 3 masters delivered the same 300 messages in the same '
                      'order (stream positions 1..300', out)
        self.assertIn('PASS', out)
        # live progress lines
        self.assertRegex(out, r'\d+\.\ds\s+master-1\s+\d+/\d+')

    def test_interrupted_demo_leaves_nothing_running(self):
        proc = subprocess.Popen(CLI + ['demo', '--masters', '2', '--duration', '60',
                                       '--rate', '200'],
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        seen = []
        lines = []
        try:
            deadline = time.monotonic() + 180
            for raw in proc.stdout:
                line = raw.decode(errors='replace')
                lines.append(line)
                # what it started: the router (and its workers) and the masters
                try:
                    seen += psutil.Process(proc.pid).children(recursive=True)
                except psutil.Error:
                    pass
                if re.match(r'\s*\d+\.\ds\s+master-1', line) or time.monotonic() > deadline:
                    break
            seen += psutil.Process(proc.pid).children(recursive=True)
            proc.send_signal(signal.SIGINT)
            rest = proc.communicate(timeout=120)[0].decode(errors='replace')
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        out = ''.join(lines) + rest
        self.assertEqual(proc.returncode, 130, out)
        self.assertIn('interrupted', out)
        self.assertTrue(seen, "saw no process started by the demo")
        names = {p.pid: p for p in seen}
        alive = [p for p in names.values() if p.is_running() and
                 p.status() != psutil.STATUS_ZOMBIE]
        self.assertEqual(alive, [], out)
        # the router and at least the masters were among them
        self.assertGreaterEqual(len(names), 4, out)


class Bench(unittest.TestCase):
    timeout = 300

    def test_tiny_bench(self):
        tmp = tempfile.mkdtemp(prefix='bmo-test-bench-')
        self.addCleanup(shutil.rmtree, tmp, True)
        out_json = os.path.join(tmp, 'bench.json')
        args = ['bench', '--masters', '2', '--rate', '200,max', '--duration', '1',
                '--payload', '100', '--warmup', '0.5', '--repeat', '1', '--json', out_json]
        # matplotlib is in the 'test' extra: the plot is always checked
        args += ['--plot', os.path.join(tmp, 'bench.png')]
        rc, out = run_cli(*args)
        self.assertEqual(rc, 0, out)
        self.assertRegex(out, r'offered\s+MQ\s+msg/s\s+p50 ms\s+p99 ms\s+max ms\s+'
                              r'master MB\s+router MB\s+lost\s+dup\s+order')
        self.assertIn('ratio ordered-wamp / wamp', out)
        self.assertRegex(out, r'ratio at 200/s: throughput \d+\.\d\dx, latency p50 '
                              r'\d+\.\d\dx, p99 \d+\.\d\dx')
        self.assertRegex(out, r'ratio at flat out: throughput \d+\.\d\dx')
        self.assertRegex(out, r'ratio peak RSS: master \d+\.\d\dx, router \d+\.\d\dx')
        with open(out_json) as f:
            figures = json.load(f)
        self.assertEqual(len(figures['runs']), 4)
        self.assertEqual({(r['mq'], str(r['rate'])) for r in figures['runs']},
                         {('ordered-wamp', '200.0'), ('wamp', '200.0'),
                          ('ordered-wamp', 'max'), ('wamp', 'max')})
        for r in figures['runs']:
            for k in ('throughput', 'latency_p50', 'latency_p99', 'latency_max',
                      'master_rss_mb', 'router_rss_mb'):
                self.assertGreater(r[k], 0, (k, r))
            self.assertEqual(r['lost'], 0, r)
            self.assertEqual(r['duplicated'], 0, r)
            self.assertTrue(r['ok'], r)
        for r in figures['runs']:
            if r['mq'] == 'ordered-wamp':
                self.assertTrue(r['same_order'], r)
        ratios = figures['ratios']['ordered-wamp']
        for k in ('throughput_flat_out', 'master_rss', 'router_rss'):
            self.assertGreater(ratios[k], 0, k)
        self.assertGreater(ratios['latency_p50']['200.0'], 0)
        self.assertGreater(ratios['latency_p99']['200.0'], 0)
        with open(os.path.join(tmp, 'bench.png'), 'rb') as f:
            self.assertEqual(f.read(8), b'\x89PNG\r\n\x1a\n')


class RouterJournalOption(unittest.TestCase):
    """``router --journal URL``: what it accepts and what it says otherwise
    (before Crossbar starts: these exit at once)."""

    def test_bad_journal_urls_are_refused_naming_the_option(self):
        tmp = tempfile.mkdtemp(prefix='bmo-journal-opt-')
        self.addCleanup(shutil.rmtree, tmp, ignore_errors=True)
        for url, says in [
                ('mysql://u@127.0.0.1/db', "--journal must be sqlite:///PATH or postgresql://"),
                ('/tmp/plain/path', "--journal must be sqlite:///PATH"),
                ('sqlite:///', "--journal must be sqlite:///PATH"),
                (f'sqlite:///{tmp}/missing/j.sqlite', "--journal: no such directory"),
                ('postgresql://u@127.0.0.1', "needs a host and a database"),
                ('postgresql://u@127.0.0.1:99999/db', "--journal: postgresql://u@127.0.0.1"),
        ]:
            rc, out = run_cli('router', '--port', '1', '--cbdir', os.path.join(tmp, 'cb'),
                              '--journal', url, timeout=60)
            self.assertNotEqual(rc, 0, url)
            self.assertIn(says, out, url)

    def test_unreachable_postgresql_is_one_line_naming_host_and_port(self):
        tmp = tempfile.mkdtemp(prefix='bmo-journal-opt-')
        self.addCleanup(shutil.rmtree, tmp, ignore_errors=True)
        port = free_port()    # nothing listens there
        rc, out = run_cli('router', '--port', str(free_port()), '--cbdir',
                          os.path.join(tmp, 'cb'), '--journal',
                          f'postgresql://bmo:hush-hush@127.0.0.1:{port}/journal', timeout=60)
        self.assertEqual(rc, 1)
        self.assertEqual(len(out.strip().splitlines()), 1, out)
        self.assertIn(f"cannot use PostgreSQL at 127.0.0.1:{port}", out)
        self.assertIn("Connection refused", out)
        self.assertNotIn('hush-hush', out)
        self.assertIn('postgresql://bmo:***@127.0.0.1', out)

    def test_journal_path_is_absolute_and_named_in_the_config(self):
        from argparse import Namespace

        from buildbot_mq_ordered.router.preflight import journal_path
        here = os.getcwd()
        args = Namespace(journal='sqlite:///rel/j.sqlite', cbdir='cb')
        with self.assertRaises(SystemExit):   # rel/ does not exist here
            journal_path(args)
        tmp = tempfile.mkdtemp(prefix='bmo-journal-opt-')
        self.addCleanup(shutil.rmtree, tmp, ignore_errors=True)
        args = Namespace(journal=f'sqlite:///{tmp}/j.sqlite', cbdir='cb')
        self.assertEqual(journal_path(args), os.path.join(tmp, 'j.sqlite'))
        args = Namespace(journal=None, cbdir='cb')
        self.assertEqual(journal_path(args), os.path.join(here, 'cb', 'sequencer.sqlite'))
        url = 'postgresql://bmo@db.example:5433/journal'
        self.assertEqual(journal_path(Namespace(journal=url, cbdir='cb')), url)
