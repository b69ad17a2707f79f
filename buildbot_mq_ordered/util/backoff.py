"""How long to wait before trying again. Pure: the caller keeps the count
of failures in a row and arms its own timer."""

import random


class Backoff:
    """Seconds before the next try after ``failures`` in a row: ``initial``
    after the first (or none), times ``growth`` after each further one, at
    most ``maximum``. ``jitter`` spreads each delay (normally distributed,
    its standard deviation that fraction of the delay) so that masters cut
    off together do not all come back at once; 0 (the default) keeps delays
    exact.

    Used by the master's ``RouterLink`` between connection attempts and by
    its ``Producer`` between refused submits (both with jitter), and by its
    ``StreamFollower`` between failed replays."""

    def __init__(self, initial, growth, maximum, jitter=0.0, rng=random):
        self.initial = initial
        self.growth = growth
        self.maximum = maximum
        self.jitter = jitter
        self._rng = rng

    def __call__(self, failures):
        delay = min(self.initial * self.growth ** max(failures - 1, 0), self.maximum)
        if not self.jitter:
            return delay
        return max(0.0, self._rng.normalvariate(delay, delay * self.jitter))
