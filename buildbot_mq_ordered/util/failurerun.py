"""A run of consecutive failures of one kind, reported as one error and a
count instead of a line per failure. Pure: the caller logs."""


class FailureRun:
    """Counts one kind of failure in a row; says which ones are worth a line.
    The producer (refused submits), the sequencer (journal writes) and the
    lease keeper (an unreachable database) each keep one."""

    def __init__(self, every=100):
        self.count = 0
        self.every = every

    def failed(self):
        """One more failure; True when this one is worth reporting (the
        first of the run, then every ``every``-th)."""
        self.count += 1
        return self.count == 1 or self.count % self.every == 0

    def succeeded(self):
        """The run is over; returns how many failures it had (0: none)."""
        n, self.count = self.count, 0
        return n
