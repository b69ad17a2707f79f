"""Key lookups in the journal: the newest number of keys the numbering's
cache lacks, read in one query per lookup (``Arrivals`` batches them), in a
thread and on a connection of their own where the journal may wait for a
server (PostgreSQL), in place where it reads a local file (SQLite:
``lookups_in_place``); a run of failures is one error line."""

from twisted.internet import defer

from buildbot_mq_ordered import wire
from buildbot_mq_ordered.router.failurelog import FailureLog
from buildbot_mq_ordered.router.journal import JournalReader


class KeyLookups:
    """Owns the lookup reader (``read(keys)``: a Deferred of {key: seq}) and
    the run of failed lookups. The sequencing's ``Arrivals`` calls
    ``look_up``; the sequencing stops it."""

    def __init__(self, journal, log):
        self.journal = journal
        self.log = log
        self.reader = JournalReader(journal, 'journal-lookups',
                                    in_place=journal.lookups_in_place, purpose='lookups')
        self.read = self.reader.last_seqs
        self._failures = FailureLog(
            log, "sequencer: cannot look keys up in the journal {path}: {err} "
                 "({n} failed lookups in a row); masters retry",
            "sequencer: key lookups in the journal work again (after {n} failed)")

    def look_up(self, keys):
        d = defer.maybeDeferred(self.read, keys)
        d.addCallbacks(self._found, self._failed)
        return d

    def stop(self):
        self.reader.stop()      # waits for a lookup under way

    def _found(self, seqs):
        self._failures.succeeded()
        return seqs

    def _failed(self, failure):
        self._failures.failed(path=self.journal.name,
                              err=wire.shown(failure.getErrorMessage()))
        return failure
