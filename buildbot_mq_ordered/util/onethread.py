"""A thread of one's own: jobs of one kind run one after another in it, off
the reactor, and never wait behind another kind's (a replay behind a
commit, a lease renewal behind a replay)."""

from twisted.internet.threads import deferToThreadPool
from twisted.python.threadpool import ThreadPool


class OneThread:
    """One named thread, started at the first job: ``run`` hands it a job,
    ``stop`` waits for the job under way and ends it (a later ``run``
    starts it again). The router's journal writer, replay reader,
    checkpoints and lease keeper each own one."""

    def __init__(self, name):
        self.name = name
        self._pool = None

    def run(self, f, *args, **kwargs):
        """A Deferred of f(*args, **kwargs), run in the thread after the jobs
        handed to it before; it fires on the reactor."""
        # the reactor only now: importing this module installs none (Crossbar
        # and the router command choose theirs)
        from twisted.internet import reactor
        if self._pool is None:
            self._pool = ThreadPool(1, 1, name=self.name)
            self._pool.start()
        return deferToThreadPool(reactor, self._pool, f, *args, **kwargs)

    def stop(self):
        pool, self._pool = self._pool, None
        if pool is not None:
            pool.stop()     # waits for the job under way
