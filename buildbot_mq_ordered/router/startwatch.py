"""What the router command says while Crossbar starts, runs and stops.

Pure: ``StartWatch`` is fed what the launcher sees - Crossbar's output line
by line, "the port answers", "the operator asked to stop", "Crossbar exited
with status N" - and answers with decisions the launcher carries out:
``Say`` a console line, ``STOP`` Crossbar, ``Exit`` with a status.

Ready means the router accepts connections and the sequencer serves: the
sequencer's info line (``sequencer ready on realm``) was seen, Crossbar
finished its start (``NODE_BOOT_COMPLETE``: every component and the
transport started, so the port is Crossbar's and not another program's),
and then the port answered. On a PostgreSQL journal the sequencer's line
says it is a candidate for the lead: a standby router is ready then, as
one that leads. Below log level info there are no such lines; the port
alone says ready.
"""

import re
from collections import deque
from typing import NamedTuple

# the sequencer's info lines (router/sequencer.py): it serves, or is a candidate
SEQUENCER_UP = ('sequencer ready on realm', 'sequencer leads realm')
BOOTED = 'NODE_BOOT_COMPLETE'             # Crossbar started every component
INFO_LEVELS = ('info', 'debug', 'trace')  # Crossbar's levels that show those lines
RECENT_LINES = 500                        # kept to say why Crossbar stopped

# "2026-11-27T09:26:31+0000 [Router       3966] " before each line of Crossbar's log
LOG_PREFIX = re.compile(r'^\S+ \[[^]]*\] ')
EXCEPTION = re.compile(r'^([\w.]*(?:Error|Exception)): (.+)')
# a traceback's last line: the exception, of any name ("psutil.ZombieProcess: ...")
RAISED = re.compile(r'^([\w.]+)(?:: (.+))?$')
TRACEBACK = 'Traceback (most recent call last):'

STARTING, READY, FAILING, STOPPING = 'starting', 'ready', 'failing', 'stopping'


class Say(NamedTuple):
    """One console line (on stderr when err)."""
    text: str
    err: bool = False


class Exit(NamedTuple):
    """The router command exits with this status (the last decision)."""
    status: int


STOP = 'stop Crossbar'


class StartWatch:
    """Owns what the console is told about one Crossbar run: the ready
    line once, and at the end exactly one of "stopped", why it could not
    start, or that it exited after it was ready. The launcher
    (``router/launcher.py``) feeds it and carries out its decisions."""

    def __init__(self, ready_text, log_path, loglevel='info'):
        self.state = STARTING
        self._ready_text = ready_text
        self._log_path = log_path
        self._need_line = loglevel in INFO_LEVELS
        self._sequencer_up = False
        self._booted = False
        self._failed = None
        self._recent = deque(maxlen=RECENT_LINES)

    @property
    def wants_probe(self):
        """Whether the port's answer would now make the router ready."""
        return self.state == STARTING and (
            not self._need_line or (self._sequencer_up and self._booted))

    def line(self, text):
        """One line of Crossbar's output."""
        self._recent.append(text)
        if any(up in text for up in SEQUENCER_UP):
            self._sequencer_up = True
        elif BOOTED in text:
            self._booted = True
            return self._booted_without_sequencer()
        return []

    def _booted_without_sequencer(self):
        if self._need_line and not self._sequencer_up and self.state == STARTING:
            # the node is up but the sequencer is not: its journal failed
            self.state = FAILING
            self._failed = "the sequencer did not start"
            return [STOP]
        return []

    def port_answers(self):
        """The router's port accepted a connection."""
        if not self.wants_probe:
            return []
        self.state = READY
        return [Say(self._ready_text)]

    def stop_asked(self):
        """The operator asked the router to stop (a signal)."""
        if self.state in (STARTING, READY):
            self.state = STOPPING
            return [STOP]
        return []

    def exited(self, status):
        """Crossbar exited with this status: the last line, and the exit."""
        if self.state == FAILING:
            return [Say(f"{self._failed} ({self._cause(status)}); its log: "
                        f"{self._log_path}", err=True), Exit(1)]
        if self.state == STOPPING:
            return [Say("stopped"), Exit(0)]
        if self.state == STARTING:
            return [Say(self._start_error(status), err=True), Exit(1)]
        return [Say(f"Crossbar exited unexpectedly (status {status}); its log: "
                    f"{self._log_path}", err=True), Exit(1)]

    def _start_error(self, status):
        """One line saying why Crossbar stopped before it was ready."""
        for text in self._texts():
            if 'is already running from node directory' in text:
                return (text[text.index('Crossbar'):].rstrip('.') +
                        ": stop it or use another --cbdir")
            if 'Address already in use' in text:
                return "the port is already in use (another router?): pick another --port"
        return (f"Crossbar stopped before it was ready ({self._cause(status)}); "
                f"its log: {self._log_path}")

    def _cause(self, status):
        # the first exception is the cause; what follows reports it again
        for name, message in self._exceptions():
            if 'ApplicationError' not in name:
                return f"{name}: {message}" if message else name
        return f"exit status {status}"

    def _exceptions(self):
        """(name, message) of each exception in the recent lines: those a
        traceback ends with, and lines that name an Error or Exception."""
        in_traceback = False
        for text in self._texts():
            if in_traceback and text and not text[0].isspace():
                in_traceback = False
                raised = RAISED.match(text)
                if raised:
                    yield raised.groups()
                    continue
            named = EXCEPTION.match(text.strip())
            if named:
                yield named.groups()
            in_traceback = in_traceback or text.endswith(TRACEBACK)

    def _texts(self):
        # indented as Crossbar wrote them: a traceback's frames are
        return (LOG_PREFIX.sub('', line).rstrip() for line in self._recent)
