"""The verifier (buildbot_mq_ordered/load/verify.py): a clean run passes, and
each kind of failure is found, alone, and named - from full records and from
constant-size summaries."""

from twisted.trial import unittest

from buildbot_mq_ordered.load.verify import DIGEST_CHUNK
from buildbot_mq_ordered.load.verify import DeliveryTally
from buildbot_mq_ordered.load.verify import check_records
from buildbot_mq_ordered.load.verify import check_summaries

PRODUCED = {'a': 3, 'b': 3}
# one order all masters agree on: a and b interleaved, each in produce order
ORDER = [('a', 0), ('b', 0), ('a', 1), ('b', 1), ('a', 2), ('b', 2)]


def key_of(producer, index):
    return ('k', str(index % 2))


def record(delivered, positions=None, seqs=None, complete=True):
    """What a load node writes: by default positions 1, 2, ... and per-key
    numbers 1, 2, ... in delivery order, as a fresh router gives them."""
    if seqs is None:
        count = {}
        seqs = []
        for p, i in delivered:
            count[key_of(p, i)] = count.get(key_of(p, i), 0) + 1
            seqs.append(count[key_of(p, i)])
    return {'delivered': [list(m) for m in delivered],
            'positions': positions or list(range(1, len(delivered) + 1)),
            'seqs': seqs, 'complete': complete}


def masters(*records):
    return {f'm{k + 1}': r for k, r in enumerate(records)}


class Records(unittest.TestCase):

    def check(self, *records, numbering=True):
        return check_records(PRODUCED, masters(*records), key_of=key_of if numbering else None,
                             logs={f'm{k + 1}': f'm{k + 1}.log' for k in range(len(records))})

    def test_a_clean_run_passes(self):
        v = self.check(record(ORDER), record(ORDER), record(ORDER))
        self.assertEqual(v.problems, [])
        self.assertTrue(v.passed)
        self.assertTrue(v.same_everywhere)
        self.assertEqual((v.reference, v.first_position, v.keys_checked), (6, 1, 2))
        self.assertEqual([(m.delivered, m.lost, m.duplicated, m.foreign, m.same_order)
                          for m in v.masters], [(6, 0, 0, 0, True)] * 3)

    def test_a_lost_message(self):
        v = self.check(record(ORDER), record(ORDER[:-1]), record(ORDER))
        self.assertEqual(v.problems, ["m2 lost 1 of 6 messages"])
        self.assertEqual(v.masters[1].lost, 1)
        self.assertFalse(v.same_everywhere)

    def test_a_duplicate(self):
        # numbering off: a message sequenced twice also breaks the numbering
        v = self.check(record(ORDER), record(ORDER + [('b', 2)]), numbering=False)
        self.assertEqual(v.problems, ["m2 delivered 1 messages twice"])
        self.assertEqual(v.masters[1].duplicated, 1)

    def test_a_message_nobody_produced(self):
        v = self.check(record(ORDER), record(ORDER + [('c', 0)]))
        self.assertEqual(v.problems, ["m2 delivered 1 messages nobody produced"])

    def test_two_masters_in_different_orders(self):
        # each producer's order kept: only the interleaving differs
        swapped = [ORDER[1], ORDER[0]] + ORDER[2:]
        v = self.check(record(ORDER), record(swapped), numbering=False)
        self.assertEqual(v.problems, ["m2 delivered in a different order"])
        self.assertEqual([m.same_order for m in v.masters], [True, False])
        self.assertFalse(v.same_everywhere)

    def test_a_per_key_number_skipped(self):
        v = self.check(record(ORDER), record(ORDER, seqs=[1, 2, 1, 2, 4, 5]))
        self.assertEqual(v.problems, ["m2: routing key ('k', '0') numbered 4 after 2"])

    def test_a_message_at_another_position_on_another_master(self):
        v = self.check(record(ORDER), record(ORDER, positions=list(range(2, 8))))
        self.assertEqual(v.problems, ["m2: a message has another position or sequence "
                                      "number than on the first master"])

    def test_positions_with_a_gap(self):
        v = self.check(record(ORDER), record(ORDER, positions=[1, 2, 3, 5, 6, 7]),
                       numbering=False)
        self.assertEqual(v.problems, ["m2: stream positions are not consecutive"])

    def test_a_producer_order_broken_everywhere(self):
        # the same order on every master, but a's first two the wrong way round
        order = [('a', 1), ('b', 0), ('a', 0)] + ORDER[3:]
        v = self.check(record(order), record(order))
        self.assertEqual(v.problems, [f"m{k} delivered a's messages out of their produce order"
                                      for k in (1, 2)])
        self.assertTrue(v.same_everywhere)

    def test_a_master_without_a_result(self):
        v = self.check(record(ORDER), record(ORDER), None)
        self.assertEqual(v.problems, ["m3 wrote no result (see m3.log)"])
        self.assertIsNone(v.masters[2].delivered)
        self.assertFalse(v.same_everywhere)

    def test_a_master_that_did_not_finish(self):
        v = self.check(record(ORDER), record(ORDER, complete=False))
        self.assertEqual(v.problems, ["m2 did not finish"])


def summarised(delivered, complete=True):
    tally = DeliveryTally()
    for p, i in delivered:
        tally.add(p, i)
    return {'summary': tally.summary(), 'complete': complete}


class Summaries(unittest.TestCase):

    def test_a_clean_run_passes(self):
        v = check_summaries(PRODUCED, [summarised(ORDER)] * 3)
        self.assertEqual(v, {'lost': 0, 'duplicated': 0, 'out_of_order': 0,
                             'complete': True, 'same_order': True})

    def test_a_lost_message(self):
        v = check_summaries(PRODUCED, [summarised(ORDER), summarised(ORDER[:-1])])
        self.assertEqual((v['lost'], v['duplicated'], v['same_order']), (1, 0, False))

    def test_a_duplicate(self):
        v = check_summaries(PRODUCED, [summarised(ORDER), summarised(ORDER + [('a', 0)])])
        self.assertEqual((v['lost'], v['duplicated']), (0, 1))

    def test_two_masters_in_different_orders(self):
        swapped = [ORDER[1], ORDER[0]] + ORDER[2:]
        v = check_summaries(PRODUCED, [summarised(ORDER), summarised(swapped)])
        self.assertEqual((v['lost'], v['duplicated'], v['out_of_order'], v['same_order']),
                         (0, 0, 0, False))

    def test_a_producer_order_broken(self):
        order = [('a', 1), ('b', 0), ('a', 0)] + ORDER[3:]
        v = check_summaries(PRODUCED, [summarised(order)])
        # (a, 1) came before its turn, and (a, 0) after it
        self.assertEqual((v['out_of_order'], v['lost'], v['same_order']), (2, 0, True))

    def test_a_master_without_a_result_lost_everything(self):
        v = check_summaries(PRODUCED, [summarised(ORDER), None])
        self.assertEqual((v['lost'], v['complete'], v['same_order']), (6, False, False))

    def test_an_incomplete_master_is_not_the_same_order(self):
        v = check_summaries(PRODUCED, [summarised(ORDER), summarised(ORDER, complete=False)])
        self.assertEqual((v['lost'], v['complete'], v['same_order']), (0, False, False))


class Tally(unittest.TestCase):

    def test_the_digest_tells_orders_apart_beyond_its_first_chunk(self):
        n = DIGEST_CHUNK * 2
        order = [('a', i) for i in range(n)]
        late_swap = order[:n - 2] + [order[n - 1], order[n - 2]]
        self.assertEqual(summarised(order)['summary']['digest'],
                         summarised(list(order))['summary']['digest'])
        self.assertNotEqual(summarised(order)['summary']['digest'],
                            summarised(late_swap)['summary']['digest'])

    def test_indexes_far_apart_are_counted_once_each(self):
        s = summarised([('a', 1000), ('a', 3), ('a', 1000), ('a', 70000)])['summary']
        self.assertEqual((s['unique'], s['duplicates']), ({'a': 3}, 1))
