"""Three masters in separate processes produce concurrently on overlapping
routing keys; every master delivers every message exactly once, and all
three delivered sequences are identical."""

import os
import tempfile

from twisted.trial import unittest

from buildbot_mq_ordered.load.nodes import NodeProcess
from buildbot_mq_ordered.load.nodes import run_nodes
from tests.support.router import shared_router
from tests.support.util import assert_delivered_once_in_one_order

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
        assert_delivered_once_in_one_order(self, nodes, results, PER_MASTER)
