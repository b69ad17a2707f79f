"""Everything that runs in or beside the Crossbar router.

In the router worker: the ``sequencer`` (the WAMP component) hands
well-formed calls to the ``sequencing``, which numbers (``numbering``),
writes through the ``writer`` (its state: ``groupcommit``) to the
``journal/`` and has the sequencer publish; ``checkpoints`` keep a SQLite
journal's WAL short. ``leading`` says whether this router leads: for good
with SQLite; with a shared PostgreSQL journal, ``leadership`` (pure) and
``leasekeeper`` decide. ``monitor/`` sees the cluster (status,
Prometheus). Beside it: ``nodeconfig`` (the Crossbar node configuration the
router command writes), ``journalurl``.

Nothing here imports Buildbot or ``buildbot_mq_ordered.master``: a router
host needs only Crossbar. The two sides share ``buildbot_mq_ordered.wire``
(the contract) and ``buildbot_mq_ordered.util``.
"""
