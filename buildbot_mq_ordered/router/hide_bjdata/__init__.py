"""A directory put first on the router's PYTHONPATH (see router/launcher.py): its
``bjdata`` module stands in for the installed one, so that autobahn, in
Crossbar's worker processes, leaves out its optional UBJSON codec.

Crossbar pulls in bjdata (autobahn[serialization]); a bjdata built against
NumPy 1 prints a traceback under NumPy 2 at import. The router's transport
speaks msgpack and JSON only.
"""
