"""Everything that runs in or beside the Crossbar router.

In the router worker: the ``sequencer`` (a WAMP component) numbers
(``numbering``), writes (``writer``) to the ``journal/`` and publishes;
with a shared PostgreSQL journal, ``leadership`` (pure) and ``leasekeeper``
decide which router leads. ``monitor/`` sees the cluster (status,
Prometheus). Beside it: ``nodeconfig`` (the Crossbar node configuration the
router command writes), ``journalurl``.

Nothing here imports Buildbot or ``buildbot_mq_ordered.master``: a router
host needs only Crossbar. The two sides share ``buildbot_mq_ordered.wire``
(the contract) and ``buildbot_mq_ordered.util``.
"""
