"""Real routers (the router command), real PostgreSQL, real Buildbot masters,
load nodes as processes."""
