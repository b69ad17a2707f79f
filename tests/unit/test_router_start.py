"""What the router command says while Crossbar starts (router/startwatch.py),
on Crossbar's output recorded from real starts (tests/unit/crossbar_output/,
recorded by its record.py): the ready line only once the sequencer is up,
Crossbar booted and the port answers; never "ready" and a start error both;
one line and the exit status for every end."""

import os

from twisted.trial import unittest

from buildbot_mq_ordered.router.startwatch import STOP
from buildbot_mq_ordered.router.startwatch import Exit
from buildbot_mq_ordered.router.startwatch import Say
from buildbot_mq_ordered.router.startwatch import StartWatch

RECORDED = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'crossbar_output')
READY = "ready at ws://127.0.0.1:8080/ws, realm 'buildbot', journal J (Crossbar's log: L)"
BOOTED = 'NODE_BOOT_COMPLETE'
SEQUENCER = 'sequencer ready on realm'
SIGTERM = 'Received SIGTERM'      # Crossbar's line once it was told to stop


def recorded(name):
    with open(os.path.join(RECORDED, name), 'rb') as f:
        return [line.decode(errors='replace') for line in f.read().split(b'\n')]


def start(lines, status, port=True, stop_before=None, loglevel='info'):
    """Drive a watcher as the launcher does: each line, then the port when it
    wants it; the operator's stop just before the line holding stop_before.
    (decisions, index of the line after which each came)."""
    watch = StartWatch(READY, 'L', loglevel)
    decisions = []
    for i, line in enumerate(lines):
        if stop_before and stop_before in line:
            decisions += [(d, i) for d in watch.stop_asked()]
        decisions += [(d, i) for d in watch.line(line)]
        if watch.wants_probe and port:
            decisions += [(d, i) for d in watch.port_answers()]
    return decisions + [(d, len(lines)) for d in watch.exited(status)]


def said(decisions):
    return [d for d, _ in decisions]


def first(lines, text):
    return next(i for i, line in enumerate(lines) if text in line)


class CleanStart(unittest.TestCase):
    lines = recorded('clean.log')

    def test_ready_once_booted_then_stopped(self):
        decisions = start(self.lines, 0, stop_before=SIGTERM)
        self.assertEqual(said(decisions), [Say(READY), STOP, Say('stopped'), Exit(0)])
        # the sequencer's line came first; ready waited for the node's boot
        self.assertLess(first(self.lines, SEQUENCER), first(self.lines, BOOTED))
        self.assertEqual(decisions[0][1], first(self.lines, BOOTED))

    def test_not_ready_while_the_port_does_not_answer(self):
        decisions = start(self.lines, 1, port=False)
        self.assertEqual(said(decisions), [
            Say("Crossbar stopped before it was ready (exit status 1); its log: L",
                err=True), Exit(1)])

    def test_crossbar_exiting_after_ready_is_one_line_with_its_status(self):
        decisions = start(self.lines, -9)
        self.assertEqual(said(decisions), [
            Say(READY),
            Say("Crossbar exited unexpectedly (status -9); its log: L", err=True),
            Exit(1)])

    def test_stopped_before_ready_says_stopped_only(self):
        decisions = start(self.lines, 0, stop_before=SEQUENCER)
        self.assertEqual(said(decisions), [STOP, Say('stopped'), Exit(0)])

    def test_a_second_signal_is_not_relayed_again(self):
        watch = StartWatch(READY, 'L')
        self.assertEqual(watch.stop_asked(), [STOP])
        self.assertEqual(watch.stop_asked(), [])

    def test_below_info_the_port_alone_says_ready(self):
        # at --loglevel warn neither the sequencer's line nor the boot's shows
        watch = StartWatch(READY, 'L', 'warn')
        self.assertTrue(watch.wants_probe)
        self.assertEqual(watch.port_answers(), [Say(READY)])
        self.assertEqual(watch.port_answers(), [])


class StartErrors(unittest.TestCase):

    def test_port_taken_by_another_program_is_not_ready(self):
        # the sequencer was up and the port answered (the other program):
        # Crossbar had not booted, so no ready line, only why it stopped
        lines = recorded('port_in_use.log')
        self.assertGreater(first(lines, SEQUENCER), 0)
        self.assertEqual(said(start(lines, 1)), [
            Say("the port is already in use (another router?): pick another --port",
                err=True), Exit(1)])

    def test_node_directory_in_use(self):
        self.one_error_line('node_dir_in_use.log',
                            r"^Crossbar\.io is already running from node directory /\S+ "
                            r"\(PID \d+\): stop it or use another --cbdir$")

    def test_a_zombie_in_node_pid_names_the_exception(self):
        # what Crossbar did before the router command cleared a stale node.pid
        self.one_error_line('zombie_in_node_pid.log',
                            r"^Crossbar stopped before it was ready \(psutil\.ZombieProcess: "
                            r"PID still exists but it's a zombie \(pid=\d+\)\); its log: L$")

    def one_error_line(self, name, pattern):
        decisions = said(start(recorded(name), 1))
        self.assertEqual(len(decisions), 2, decisions)
        self.assertRegex(decisions[0].text, pattern)
        self.assertEqual(decisions, [Say(decisions[0].text, err=True), Exit(1)])

    def test_the_sequencer_did_not_start(self):
        lines = recorded('sequencer_fails.log')
        decisions = start(lines, 0)
        self.assertEqual(said(decisions), [
            STOP,
            Say("the sequencer did not start (sqlite3.OperationalError: unable to open "
                "database file); its log: L", err=True),
            Exit(1)])
        self.assertEqual(decisions[0][1], first(lines, BOOTED))

    def test_the_operator_stopping_a_failed_start_hears_why(self):
        decisions = start(recorded('sequencer_fails.log'), 0, stop_before=SIGTERM)
        self.assertEqual(said(decisions)[:2], [STOP, Say(
            "the sequencer did not start (sqlite3.OperationalError: unable to open "
            "database file); its log: L", err=True)])

    def test_no_exception_in_the_log_gives_the_status(self):
        watch = StartWatch(READY, 'L')
        watch.line("2026-12-02T08:24:02+0000 [Controller  1] sequencer: no journal")
        self.assertEqual(watch.exited(3), [
            Say("Crossbar stopped before it was ready (exit status 3); its log: L",
                err=True), Exit(1)])


class Standby(unittest.TestCase):
    """A router on a PostgreSQL journal that another router leads: ready as
    a candidate, before it leads."""

    lines = recorded('standby.log')

    def test_ready_as_a_candidate(self):
        candidate = first(self.lines, SEQUENCER)
        self.assertIn('a candidate for the lead', self.lines[candidate])
        decisions = start(self.lines, 0, stop_before=SIGTERM)
        self.assertEqual(said(decisions), [Say(READY), STOP, Say('stopped'), Exit(0)])
        self.assertEqual(decisions[0][1], first(self.lines, BOOTED))
        self.assertLess(decisions[0][1], first(self.lines, 'sequencer leads realm'))


class EveryEnd(unittest.TestCase):
    """Over every recording, with or without the port, stopped or not: at
    most one ready line, never followed by a start error, and exactly one
    last line and exit."""

    def test_one_story_per_run(self):
        for name in sorted(os.listdir(RECORDED)):
            if not name.endswith('.log'):
                continue
            lines = recorded(name)
            for port in (True, False):
                for stop in (None, SEQUENCER, BOOTED, SIGTERM):
                    for status in (0, 1, -9):
                        self.check(said(start(lines, status, port, stop)), (name, port, stop))

    def check(self, decisions, case):
        says = [d for d in decisions if isinstance(d, Say)]
        self.assertIsInstance(decisions[-1], Exit, case)
        self.assertEqual([d for d in decisions if isinstance(d, Exit)], [decisions[-1]], case)
        ready = [d for d in says if d.text.startswith('ready at')]
        self.assertLessEqual(len(ready), 1, case)
        self.assertEqual(len(says), len(ready) + 1, case)
        if ready:
            self.assertNotIn('before it was ready', says[-1].text, case)
        self.assertEqual(says[-1].err, decisions[-1].status != 0, case)
