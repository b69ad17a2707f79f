"""The bench's figures and report (load/benchfigures.py, load/benchreport.py)
from made-up load node results: what a run measured, the medians, the
ratios, and the text the bench prints."""

from twisted.trial import unittest

from buildbot_mq_ordered.load.benchfigures import FLAT_OUT
from buildbot_mq_ordered.load.benchfigures import all_ratios
from buildbot_mq_ordered.load.benchfigures import measure
from buildbot_mq_ordered.load.benchfigures import ratios
from buildbot_mq_ordered.load.benchfigures import table
from buildbot_mq_ordered.load.benchreport import describe
from buildbot_mq_ordered.load.benchreport import report
from buildbot_mq_ordered.load.latency import bucket_value
from buildbot_mq_ordered.load.latency import lat_bucket
from buildbot_mq_ordered.load.verify import DeliveryTally

PRODUCED = {'ow0': 2, 'ow1': 2}
ORDER = [('ow0', 0), ('ow1', 0), ('ow0', 1), ('ow1', 1)]


def result(delivered=ORDER, seconds=2.0, latency=0.010, rss_kb=80 * 1024):
    """A load node's result as ``--no-record`` writes it."""
    tally = DeliveryTally()
    for p, i in delivered:
        tally.add(p, i)
    return {'started_at': 100.0, 'last_at': 100.0 + seconds, 'complete': True,
            'max_rss_kb': rss_kb,
            'summary': {'delivered': len(delivered), **tally.summary(),
                        'latency_hist': {str(lat_bucket(latency)): len(delivered)},
                        'latency_max': latency}}


def run(mq='ordered-wamp', rate=200.0, rep=0, results=None, router_peak=300 * 2 ** 20,
        error=None):
    return measure(mq, rate, rep, PRODUCED, results or [result(), result()],
                   router_peak, error)


class Measure(unittest.TestCase):

    def test_a_good_run(self):
        r = run(results=[result(seconds=2.0), result(seconds=4.0, rss_kb=90 * 1024)])
        self.assertEqual((r['produced'], r['masters'], r['delivered']), (4, 2, [4, 4]))
        self.assertEqual((r['throughput'], r['throughput_min']), (1.5, 1.0))
        self.assertEqual(r['latency_p50'], bucket_value(lat_bucket(0.010)))
        self.assertLess(abs(r['latency_p50'] - 0.010), 0.0003)  # 2.5 % buckets
        self.assertEqual((r['latency_max'], r['master_rss_mb'], r['router_rss_mb']),
                         (0.010, 90.0, 300.0))
        self.assertEqual((r['lost'], r['duplicated'], r['same_order'], r['ok'],
                          r['problem'], r['offered']), (0, 0, True, True, None, 200.0))

    def test_a_lost_message_fails_the_run(self):
        r = run(results=[result(), result(ORDER[:-1])])
        self.assertEqual((r['lost'], r['same_order'], r['ok']), (1, False, False))

    def test_a_master_without_a_result_is_named(self):
        r = run(rate=FLAT_OUT, results=[result(), None])
        self.assertEqual(r['problem'], "no result from ow1 (see their logs)")
        self.assertEqual((r['lost'], r['ok'], r['offered'], r['delivered']),
                         (4, False, None, [4]))

    def test_an_error_is_the_problem(self):
        r = run(results=[None, None], error="nodes not ready: ow0, ow1")
        self.assertEqual((r['problem'], r['ok'], r['throughput']),
                         ("nodes not ready: ow0, ow1", False, None))


def runs():
    """Two repeats at 200/s and one flat out, for each MQ."""
    out = []
    for mq, speed in (('ordered-wamp', 1.0), ('wamp', 2.0)):
        for rep, seconds in ((0, 2.0), (1, 4.0)):
            out.append(run(mq, 200.0, rep, [result(seconds=seconds * speed)] * 2))
        out.append(run(mq, FLAT_OUT, 0, [result(seconds=speed / 8)] * 2))
    return out


class TableAndRatios(unittest.TestCase):

    def test_medians_per_mq_and_rate(self):
        rows = table(runs(), [200.0, FLAT_OUT], ['ordered-wamp', 'wamp'])
        self.assertEqual([(r['rate'], r['mq'], r['runs'], r['throughput']) for r in rows],
                         [(200.0, 'ordered-wamp', 2, 1.5), (200.0, 'wamp', 2, 0.75),
                          (FLAT_OUT, 'ordered-wamp', 1, 32.0), (FLAT_OUT, 'wamp', 1, 16.0)])
        self.assertTrue(all(r['ok'] and r['same_order'] and r['lost'] == 0 for r in rows))

    def test_lost_and_duplicated_add_up_over_repeats(self):
        bad = runs()
        bad[0] = run(results=[result(), result(ORDER[:-1])])
        bad[1] = run(rep=1, results=[result(), result(ORDER + [ORDER[0]])])
        row = table(bad, [200.0], ['ordered-wamp'])[0]
        self.assertEqual((row['lost'], row['duplicated'], row['same_order'], row['ok']),
                         (1, 1, False, False))

    def test_ratios_ordered_over_stock(self):
        x = ratios(runs(), [200.0, FLAT_OUT], ['ordered-wamp', 'wamp'])
        self.assertEqual(x['throughput'], {'200.0': 2.0, 'max': 2.0})
        self.assertEqual(x['throughput_flat_out'], 2.0)
        self.assertEqual((x['latency_p50'], x['latency_p99']),
                         ({'200.0': 1.0}, {'200.0': 1.0}))
        self.assertEqual((x['master_rss'], x['router_rss']), (1.0, 1.0))

    def test_no_ratios_with_one_mq(self):
        self.assertEqual(ratios(runs(), [200.0], ['ordered-wamp']), {})

    def test_every_ordered_mq_over_stock(self):
        # ordered-wamp on SQLite and on PostgreSQL, each against wamp
        pg = [dict(r, mq='ordered-wamp-pg') for r in runs() if r['mq'] == 'ordered-wamp']
        all_runs = runs() + pg
        x = all_ratios(all_runs, [200.0], ['ordered-wamp', 'ordered-wamp-pg', 'wamp'])
        self.assertEqual(sorted(x), ['ordered-wamp', 'ordered-wamp-pg'])
        self.assertEqual(x['ordered-wamp-pg']['throughput'], {'200.0': 2.0})


class Report(unittest.TestCase):

    def test_the_table_and_the_ratios(self):
        rates, mqs = [200.0, FLAT_OUT], ['ordered-wamp', 'wamp']
        all_runs = runs()
        lines = report(table(all_runs, rates, mqs), all_ratios(all_runs, rates, mqs), all_runs,
                       rates, 2, {'ordered-wamp': 200 * 2 ** 20, 'wamp': 100 * 2 ** 20})
        self.assertEqual(lines[0], "results (medians over 2 runs per MQ and rate; msg/s = "
                                   "messages/s each master delivered; latency = produce "
                                   "to deliver):")
        self.assertEqual(lines[1].split(), ['offered', 'MQ', 'msg/s', 'p50', 'ms', 'p99',
                                            'ms', 'max', 'ms', 'master', 'MB', 'router',
                                            'MB', 'lost', 'dup', 'order'])
        self.assertEqual(lines[3].split(), ['200/s', 'ordered-wamp', '2', '10.0', '10.0',
                                            '10.0', '80', '300', '0', '0', 'same'])
        self.assertEqual(lines[5].split()[:3], ['flat', 'out', 'ordered-wamp'])
        self.assertEqual(len({len(line) for line in lines[1:7]}), 1, "columns aligned")
        self.assertEqual(lines[-4:], [
            "ratio ordered-wamp / wamp (throughput: higher is better; latency and memory: "
            "lower is better):",
            "ratio at 200/s: throughput 2.00x, latency p50 1.00x, p99 1.00x",
            "ratio at flat out: throughput 2.00x",
            "ratio peak RSS: master 1.00x, router 1.00x"])
        self.assertIn("idle after warm-up: ordered-wamp 200 MB, wamp 100 MB", lines[7])

    def test_a_failed_run_is_named(self):
        failed = [run(rate=FLAT_OUT, results=[result(), None])]
        lines = report(table(failed, [FLAT_OUT], ['wamp']), {}, failed, [FLAT_OUT], 1, {})
        self.assertEqual(lines[-1], "problem: ordered-wamp at flat out: no result from ow1 "
                                    "(see their logs)")

    def test_a_run_in_a_line(self):
        self.assertEqual(
            describe(dict(run(), router_idle_rss_mb=250.0)),
            "ordered-wamp         200/s: 2 msg/s per master, latency p50 10.0 p99 10.0 "
            "max 10.0 ms, RSS master 80 MB router 300 MB (idle 250), lost 0, dup 0, "
            "order same")
