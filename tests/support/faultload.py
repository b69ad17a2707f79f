"""Masters producing at a steady rate while a fault is driven: load nodes in
processes of their own (``load/nodes.py``), each listing every router; the
fault's steps run at set moments from the thread that drives the nodes;
what the masters delivered is judged by ``load/verify.py``."""

import os
import shutil
import tempfile
import time

from twisted.internet import threads

from buildbot_mq_ordered.load.nodes import NodeProcess
from buildbot_mq_ordered.load.nodes import run_nodes
from buildbot_mq_ordered.load.verify import check_records

MASTERS = 3
NODE_TIMEOUT = 150       # a node's own bound on its run
RUN_TIMEOUT = 180        # the whole run, start-up included
TICK = 0.05              # how often the steps are looked at


class MastersUnderFault:
    """Owns the load nodes of one fault run, when each step of the fault
    ran (``at``: name -> time.time() after it) and which ran only once
    production was over (``late``: the run was too short for its fault)."""

    def __init__(self, testcase, routers, per_master, rate, masters=MASTERS,
                 distinct_keys=0):
        tmp = tempfile.mkdtemp(prefix='bmo-stall-')
        testcase.addCleanup(shutil.rmtree, tmp, True)
        urls = [r.url for r in routers]
        self.per_master = per_master
        self.nodes = [NodeProcess(urls, f'm{i}', os.path.join(tmp, f'm{i}.json'),
                                  messages=per_master, expect=masters * per_master,
                                  rate=rate, shared_keys=7, distinct_keys=distinct_keys,
                                  index=i, nodes=masters, timeout=NODE_TIMEOUT)
                      for i in range(masters)]
        for n in self.nodes:
            testcase.addCleanup(n.stop)
        self.at = {}
        self.late = []
        self.results = None

    def run(self, start_after, steps):
        """A Deferred of the nodes' results. ``steps``: [(seconds after the
        step before, name, action)]; the first once every master delivered
        ``start_after`` messages."""
        return threads.deferToThread(self._run, start_after, list(steps))

    def _run(self, start_after, steps):
        def tick():
            if steps and self._due(steps[0][0], start_after):
                self._step(*steps.pop(0)[1:])
        try:
            self.results = run_nodes(self.nodes, timeout=RUN_TIMEOUT, on_tick=tick, tick=TICK)
        finally:
            for n in self.nodes:
                n.stop()
            for _, name, action in steps:    # the fault must end, whatever happened
                self.late.append(name)
                self._step(name, action)
        return self.results

    def _due(self, delay, start_after):
        if not self.at:
            return min(n.progress[0] for n in self.nodes) >= start_after
        return time.time() >= max(self.at.values()) + delay

    def _step(self, name, action):
        action()
        self.at[name] = time.time()

    def verdict(self):
        """What verify.py concludes: lost, twice, one order, consecutive."""
        return check_records({n.name: self.per_master for n in self.nodes},
                             {n.name: r for n, r in zip(self.nodes, self.results)},
                             logs={n.name: n.log_path for n in self.nodes})

    def figures(self, verdict):
        """Lost, duplicated and the longest produce-to-deliver latency."""
        records = [r for r in self.results if r is not None]
        total = len(self.nodes) * self.per_master
        return {'messages': total,
                # a master that wrote no result lost everything, as far as we know
                'lost': sum(total if m.record is None else m.lost for m in verdict.masters),
                'duplicated': sum(m.duplicated or 0 for m in verdict.masters),
                'max_latency_s': round(max((r['summary']['latency_max'] or 0
                                            for r in records), default=0), 2)}
