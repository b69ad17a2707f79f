"""The 'ordered-wamp' log events of masters in this process, awaitable."""

from twisted.internet import defer
from twisted.logger import LogLevel
from twisted.logger import formatEvent
from twisted.logger import globalLogPublisher

from tests.support.util import with_timeout


class LogEvents:
    """The 'ordered-wamp' log events while a test runs; awaitable."""

    def __init__(self, testcase):
        self.events = []
        self._waiters = []
        globalLogPublisher.addObserver(self)
        testcase.addCleanup(globalLogPublisher.removeObserver, self)

    def __call__(self, event):
        if event.get('log_namespace') != 'ordered-wamp':
            return
        self.events.append(event)
        for pred, d in list(self._waiters):
            if pred(formatEvent(event)):
                self._waiters.remove((pred, d))
                d.callback(formatEvent(event))

    def texts(self, level=None):
        return [formatEvent(e) for e in self.events
                if level is None or e['log_level'] == level]

    def errors(self):
        return self.texts(LogLevel.error)

    def wait_for(self, text, timeout=30):
        """Fires with the first message containing text (bounded)."""
        for t in self.texts():
            if text in t:
                return defer.succeed(t)
        d = defer.Deferred()
        self._waiters.append((lambda t: text in t, d))
        return with_timeout(d, timeout, f"a log message containing {text!r}")
