"""What the demo prints after its run (load/demoreport.py), from a verdict
of load/verify.py: the table, PASS, and a FAIL line per problem."""

from twisted.trial import unittest

from buildbot_mq_ordered.load.demoreport import summary
from buildbot_mq_ordered.load.demoreport import table
from buildbot_mq_ordered.load.verify import check_records

ORDER = [('master-1', 0), ('master-2', 0), ('master-1', 1), ('master-2', 1)]


def record(name, delivered=ORDER):
    return {'name': name, 'produced': 2, 'delivered': [list(m) for m in delivered],
            'positions': list(range(1, len(delivered) + 1)), 'seqs': [], 'complete': True,
            'started_at': 10.0, 'last_at': 12.0,
            'latencies': [0.001 * (k + 1) for k in range(len(delivered))]}


class DemoReport(unittest.TestCase):

    def test_a_passing_run(self):
        v = check_records({'master-1': 2, 'master-2': 2},
                          {'master-1': record('master-1'), 'master-2': record('master-2')})
        self.assertEqual([line.split() for line in table(v)[2:]],
                         [['master-1', '2', '4', '0', '0', 'same', '2', '3.0', '4.0'],
                          ['master-2', '2', '4', '0', '0', 'same', '2', '3.0', '4.0']])
        lines = summary(v)
        self.assertEqual(lines[0], "order: all 2 masters delivered the same 4 messages in "
                                   "the same order (stream positions 1..4, per-key sequence "
                                   "numbers 1, 2, 3, ... on 0 routing keys)")
        self.assertTrue(lines[1].startswith("throughput: 4 messages produced, 8 deliveries "
                                            "in 2.0s (4 deliveries/s in total)"), lines[1])
        self.assertEqual(lines[2], "PASS: every master delivered every message once, "
                                   "all in the same order")

    def test_a_failing_run(self):
        v = check_records({'master-1': 2, 'master-2': 2},
                          {'master-1': record('master-1', ORDER[:3]), 'master-2': None},
                          logs={'master-1': 'm1.log', 'master-2': 'm2.log'})
        self.assertEqual(table(v)[3].split(), ['master-2', '2'] + ['-'] * 7)
        lines = summary(v)
        self.assertEqual([line for line in lines if line.startswith('FAIL')],
                         ["FAIL: master-2 wrote no result (see m2.log)",
                          "FAIL: master-1 lost 1 of 4 messages"])
        self.assertFalse(any(line.startswith(('PASS', 'order:')) for line in lines))
