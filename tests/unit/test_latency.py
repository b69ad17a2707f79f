"""Latency histograms and quantiles (buildbot_mq_ordered/load/latency.py)."""

from twisted.trial import unittest

from buildbot_mq_ordered.load.latency import bucket_value
from buildbot_mq_ordered.load.latency import hist_percentile
from buildbot_mq_ordered.load.latency import lat_bucket
from buildbot_mq_ordered.load.latency import merge_hists
from buildbot_mq_ordered.load.latency import percentile


class Histogram(unittest.TestCase):

    def test_a_bucket_holds_its_latency_within_two_and_a_half_percent(self):
        for seconds in (2e-5, 0.001, 0.0123, 0.5, 7.0):
            self.assertLess(abs(bucket_value(lat_bucket(seconds)) / seconds - 1), 0.025)
        self.assertEqual(lat_bucket(0), 0)

    def test_quantiles(self):
        hist = {lat_bucket(0.001): 99, lat_bucket(0.1): 1}
        self.assertEqual(hist_percentile(hist, 0.5), bucket_value(lat_bucket(0.001)))
        self.assertEqual(hist_percentile(hist, 0.99), bucket_value(lat_bucket(0.001)))
        self.assertEqual(hist_percentile(hist, 0.995), bucket_value(lat_bucket(0.1)))
        self.assertIsNone(hist_percentile({}, 0.5))

    def test_merged_from_json_and_from_memory(self):
        self.assertEqual(merge_hists([{'3': 1}, {3: 2, 5: 1}]), {3: 3, 5: 1})


class ExactQuantiles(unittest.TestCase):

    def test_of_a_list(self):
        values = [0.5, 0.1, 0.4, 0.2, 0.3]
        self.assertEqual([percentile(values, q) for q in (0, 0.5, 0.99, 1)],
                         [0.1, 0.3, 0.5, 0.5])
        self.assertIsNone(percentile([], 0.5))
