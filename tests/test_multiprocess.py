"""Three masters in separate processes produce concurrently on overlapping
routing keys; every master delivers every message exactly once, and all
three delivered sequences are identical."""

import os
import tempfile

from twisted.trial import unittest

from buildbot_mq_ordered.load.nodes import NodeProcess
from buildbot_mq_ordered.load.nodes import run_nodes
from tests.router import shared_router

MASTERS = 3
PER_MASTER = 1200


class ThreeMasters(unittest.TestCase):
    timeout = 300

    def test_identical_order_exactly_once(self):
        router = shared_router()
        tmp = tempfile.mkdtemp(prefix='bmo-mp-')
        nodes = [NodeProcess(router.url, f'm{i}', os.path.join(tmp, f'm{i}.json'),
                             messages=PER_MASTER, expect=MASTERS * PER_MASTER,
                             shared_keys=5, timeout=240)
                 for i in range(MASTERS)]
        try:
            results = run_nodes(nodes, timeout=280)
        finally:
            for n in nodes:
                n.stop()
        for n, r in zip(nodes, results):
            self.assertIsNotNone(r, f"{n.name} wrote no result; see {n.log_path}")
        expected = {(f'm{i}', j) for i in range(MASTERS) for j in range(PER_MASTER)}
        first = [tuple(x) for x in results[0]['delivered']]
        for r in results:
            delivered = [tuple(x) for x in r['delivered']]
            self.assertEqual(len(delivered), MASTERS * PER_MASTER, r['name'])
            self.assertEqual(len(set(delivered)), len(delivered), "duplicates")
            self.assertEqual(set(delivered), expected, "lost or foreign messages")
            self.assertEqual(delivered, first, "masters disagree on the order")
            positions = r['positions']
            self.assertEqual(positions, list(range(positions[0], positions[0] + len(positions))))
        # each producer's own messages keep their produce order everywhere
        for i in range(MASTERS):
            mine = [j for p, j in first if p == f'm{i}']
            self.assertEqual(mine, list(range(PER_MASTER)))
