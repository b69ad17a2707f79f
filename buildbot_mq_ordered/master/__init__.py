"""Everything that runs inside a Buildbot master: the MQ (``mq``) and its parts.

A message's way through a master: ``produce`` -> ``producer`` (encode,
``outbox``, one batch in flight) -> submit on the session ``link`` keeps
joined -> ... the sequencer ... -> stream event -> ``streamreader`` ->
``follower`` (pure decisions, ``reorder`` buffer) -> ``consumers``.
``config`` holds ``c['mq']``'s keys, ``report`` what a master tells the
router's monitor, ``dashboard`` the page in Buildbot's web UI.

Nothing here imports ``buildbot_mq_ordered.router``: the two sides share
only ``buildbot_mq_ordered.wire`` (the contract) and ``buildbot_mq_ordered.util``.
"""
