"""Small helpers both sides use (no Buildbot, no Crossbar)."""
