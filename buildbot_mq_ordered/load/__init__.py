"""Load on a cluster of real processes, and what it must show: the router
and load-node processes the demo, the bench and the tests start, the load
node itself, and the checks and figures of what the masters delivered."""
