"""The fast lane: pure code and in-process objects; no process, no socket
(conftest.py makes either an error)."""
