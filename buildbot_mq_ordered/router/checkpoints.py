"""The journal's checkpoints, off the reactor: a SQLite journal opened by
the sequencer copies its WAL into the database only here (its commits never
wait for that); PostgreSQL's server checkpoints by itself."""

from twisted.internet import task

from buildbot_mq_ordered import wire
from buildbot_mq_ordered.util.onethread import OneThread

# seconds between journal checkpoints
CHECKPOINT_EVERY = 1.0


class Checkpoints:
    """Owns the journal's checkpoint loop and its thread: one checkpoint
    every CHECKPOINT_EVERY seconds, none while the last one is under way.
    The Sequencer starts it on joining and stops it on leaving."""

    def __init__(self, journal, log):
        self.journal = journal
        self.log = log
        self._thread = OneThread('journal-checkpoint')
        self._loop = task.LoopingCall(self._checkpoint)
        self._under_way = False

    def start(self):
        self._loop.start(CHECKPOINT_EVERY, now=False)

    def stop(self):
        if self._loop.running:
            self._loop.stop()
        self._thread.stop()    # waits for a checkpoint under way

    def _checkpoint(self):
        if self._under_way:
            return
        self._under_way = True
        d = self._thread.run(self.journal.checkpoint)

        def done(result):
            self._under_way = False
            return result
        d.addBoth(done)
        d.addErrback(lambda f: self.log.warn("sequencer: journal checkpoint failed: {err}",
                                             err=wire.shown(f.getErrorMessage())))
