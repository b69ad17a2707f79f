"""Everything that runs inside a Buildbot master: the MQ (``mq``) and its parts.

A message's way through a master: ``produce`` -> ``producer`` (encode,
``outbox``, one batch in flight) -> ``submitter`` on the session ``link``
keeps joined (``connectpolicy`` decides its reconnects and lines,
``linkkeeper`` starts and stops it) -> ... the sequencer ... -> stream
event -> ``streamreader`` -> ``follower`` (pure decisions: ``placement``,
``replays``, ``reorder`` buffer) -> ``dispatch`` -> ``consumers``.
``waits`` holds the start-up's wait for the first join and the stop's for
idleness, ``timers`` the retries cancelled at stop. ``config`` holds
``c['mq']``'s keys, ``report`` what a master tells the router's monitor,
``dashboard`` the page in Buildbot's web UI.

Nothing here imports ``buildbot_mq_ordered.router``: the two sides share
only ``buildbot_mq_ordered.wire`` (the contract) and ``buildbot_mq_ordered.util``.
"""

import sys


def import_autobahn_serializers():
    """Import autobahn's serializers without its optional UBJSON codec.

    autobahn.wamp.serializer imports ``bjdata`` if it is installed (Crossbar
    pulls it in); a bjdata built against NumPy 1 prints a traceback under
    NumPy 2 before falling back to pure Python. Masters and the router speak
    msgpack and JSON only, so bjdata is hidden while autobahn looks for it.
    """
    if 'autobahn.wamp.serializer' in sys.modules or 'bjdata' in sys.modules:
        return
    import txaio
    # first: the serializer module binds txaio's functions when imported
    txaio.use_twisted()
    sys.modules['bjdata'] = None  # makes `import bjdata` raise ImportError
    try:
        import autobahn.wamp.serializer  # noqa: F401
    finally:
        if sys.modules.get('bjdata', 0) is None:
            del sys.modules['bjdata']


# before any module here imports autobahn
import_autobahn_serializers()
