"""A run of one kind of journal failure in the router's log: one error line
at its first failure (then every 100th), one line when it is over."""

from buildbot_mq_ordered.util.failurerun import FailureRun


class FailureLog:
    """Owns a run of failures (``FailureRun``) and its two lines: ``failing``
    (an error, formatted with n and the caller's fields) and ``recovered``
    (formatted with n). The sequencing keeps one for journal writes, its
    key lookups one for lookups."""

    def __init__(self, log, failing, recovered):
        self.log = log
        self._run = FailureRun()
        self._failing = failing
        self._recovered = recovered

    @property
    def count(self):
        return self._run.count

    def failed(self, **fields):
        if self._run.failed():
            self.log.error(self._failing, n=self._run.count, **fields)

    def succeeded(self):
        n = self._run.succeeded()
        if n:
            self.log.info(self._recovered, n=n)
