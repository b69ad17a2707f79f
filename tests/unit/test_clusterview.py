"""The monitor's decisions (clusterview.py, pure): lag, staleness, rate,
health verdicts; and the metric families made of them (metrics.py)."""

from twisted.trial import unittest

from buildbot_mq_ordered.router.monitor import clusterview
from buildbot_mq_ordered.router.monitor.clusterview import ClusterView
from buildbot_mq_ordered.router.monitor.clusterview import problems
from buildbot_mq_ordered.router.monitor.clusterview import router_problem

INFO = {'stream_id': 's1', 'head': 100, 'first_pos': 1}


def report(name, delivered, **kw):
    r = {'master': name, 'producer_id': 'p-' + name, 'state': 'joined', 'stream_id': 's1',
         'delivered_pos': delivered, 'outbox': 0, 'buffer': 0, 'skipped': 0,
         'replayed': 0, 'reconnects': 0, 'delivered': delivered, 'produced': 0}
    r.update(kw)
    return r


class Verdicts(unittest.TestCase):

    def view(self):
        v = ClusterView(stale_after=10, forget_after=60, window=60)
        v.on_info(INFO, now=0)
        return v

    def test_no_sequencer_is_unhealthy_with_the_reason(self):
        v = ClusterView()
        v.on_info_failed('wamp.error.no_such_procedure', now=0)
        s = v.status(now=1)
        self.assertIsNone(s['sequencer'])
        self.assertIsNone(s['head'])
        self.assertEqual(problems(s), [
            "no sequencer answers on this router (wamp.error.no_such_procedure)"])
        self.assertIn('no sequencer', router_problem(s))

    def test_one_router_leads_without_term(self):
        s = self.view().status(now=1)
        self.assertEqual((s['sequencer'], s['leader'], s['term']), ('leading', True, None))
        self.assertIsNone(router_problem(s))
        self.assertEqual(s['problems'], [])

    def test_term_and_leadership_from_info(self):
        v = ClusterView()
        v.on_info(dict(INFO, term=7, leader=False, leader_alive=True, journal_rows=99),
                  now=0)
        s = v.status(now=0)
        self.assertEqual((s['sequencer'], s['term'], s['journal_rows']), ('standby', 7, 99))
        self.assertIsNone(router_problem(s))   # stands by, and a leader lives
        v.on_info(dict(INFO, term=7, leader=False, leader_alive=False), now=1)
        self.assertEqual(router_problem(v.status(now=1)),
                         "the sequencer stands by and sees no live leader")

    def test_a_standby_router_from_its_sequencers_role(self):
        # no info here (no leading sequencer): the role procedure says standby
        v = ClusterView()
        v.on_role({'leader': False, 'term': None, 'leader_alive': True},
                  'wamp.error.no_such_procedure', now=0)
        s = v.status(now=0)
        self.assertEqual((s['sequencer'], s['head']), ('standby', None))
        self.assertIsNone(router_problem(s))
        v.on_role({'leader': False, 'term': None, 'leader_alive': False}, 'x', now=1)
        self.assertEqual(router_problem(v.status(now=1)),
                         "the sequencer stands by and sees no live leader")
        v.on_role('nonsense', 'wamp.error.no_such_procedure', now=2)
        self.assertIn('no_such_procedure', router_problem(v.status(now=2)))

    def test_malformed_info_counts_as_none(self):
        v = ClusterView()
        v.on_info({'head': 3}, now=0)
        self.assertIsNone(v.status(now=0)['sequencer'])

    def test_lag_as_of_the_report(self):
        v = self.view()
        v.on_report(report('a', 90), now=1)
        v.on_stream('s1', [[150, 1, ['k'], b'']], now=2)   # sequenced after the report
        [m] = v.status(now=3)['masters']
        self.assertEqual((m['master'], m['delivered_pos'], m['lag'], m['stale']),
                         ('a', 90, 10, False))
        self.assertEqual(v.status(now=3)['head'], 150)
        self.assertEqual(problems(v.status(now=3), max_lag=10), [])
        self.assertEqual(problems(v.status(now=3), max_lag=9),
                         ["master a lags 10 positions (more than 9)"])

    def test_a_stale_master_lags_behind_the_head_now(self):
        v = self.view()
        v.on_report(report('a', 100), now=0)
        v.on_stream('s1', [[101, 1, ['k'], b''], [130, 1, ['k'], b'']], now=1)
        [m] = v.status(now=10)['masters']
        self.assertEqual((m['lag'], m['stale'], m['state']), (0, False, 'joined'))
        [m] = v.status(now=10.5)['masters']
        self.assertEqual((m['lag'], m['stale'], m['state']), (30, True, 'stale'))
        self.assertEqual(problems(v.status(now=10.5)),
                         ["master a is stale: no report for 10s (stale after 10s)"])
        v.on_report(report('a', 130), now=11)   # back
        [m] = v.status(now=11)['masters']
        self.assertEqual((m['lag'], m['stale']), (0, False))

    def test_a_master_that_stopped_is_forgotten_at_once_a_silent_one_later(self):
        v = self.view()
        v.on_report(report('a', 1), now=0)
        v.on_report(report('b', 1), now=0)
        v.on_report(report('a', 1, state='stopped'), now=1)
        self.assertEqual([m['master'] for m in v.status(now=1)['masters']], ['b'])
        self.assertEqual(v.status(now=61)['masters'], [])

    def test_masters_sorted_by_name_latest_report_kept(self):
        v = self.view()
        v.on_report(report('b', 5), now=0)
        v.on_report(report('a', 6), now=0)
        v.on_report(report('b', 7, outbox=3), now=1)
        rows = v.status(now=1)['masters']
        self.assertEqual([(m['master'], m['delivered_pos'], m['outbox']) for m in rows],
                         [('a', 6, 0), ('b', 7, 3)])

    def test_malformed_reports_are_counted_not_kept(self):
        v = self.view()
        for bad in (None, 'x', {'master': 3}, {'master': 'a'}):
            v.on_report(bad, now=0)
        self.assertEqual(v.ignored_reports, 4)
        self.assertEqual(v.status(now=0)['masters'], [])

    def test_no_lag_for_a_master_on_another_stream_or_not_started(self):
        v = self.view()
        v.on_report(report('a', 5, stream_id='old'), now=0)
        v.on_report(report('b', None), now=0)
        self.assertEqual([m['lag'] for m in v.status(now=0)['masters']], [None, None])

    def test_rate_over_the_window(self):
        v = self.view()
        v.on_stream('s1', [[i, 1, ['k'], b''] for i in range(1, 61)], now=0)
        v.on_stream('s1', [[61, 1, ['k'], b'']] * 60, now=30)
        s = v.status(now=60)
        self.assertEqual((s['rate'], s['sequenced_total']), (2.0, 120))
        self.assertEqual(v.status(now=61)['rate'], 1.0)

    def test_rate_of_a_young_monitor_over_its_age(self):
        v = self.view()   # first event at 0
        v.on_stream('s1', [[i, 1, ['k'], b''] for i in range(1, 21)], now=5)
        self.assertEqual(v.status(now=10)['rate'], 2.0)
        self.assertEqual(v.status(now=0.5)['rate'], 20.0)   # at least one second

    def test_a_new_stream_resets_the_head_seen(self):
        v = self.view()
        v.on_stream('s1', [[500, 1, ['k'], b'']], now=0)
        v.on_info({'stream_id': 's2', 'head': 3, 'first_pos': 1}, now=1)
        self.assertEqual(v.status(now=1)['head'], 3)


class Families(unittest.TestCase):

    def test_status_as_metric_families(self):
        from buildbot_mq_ordered.router.monitor.metrics import StatusCollector
        v = ClusterView()
        v.on_info(dict(INFO, term=4), now=0)
        v.on_report(report('a', 97, outbox=2, skipped=1, reconnects=3), now=0)
        v.on_stream('s1', [[100, 1, ['k'], b'']], now=0)
        samples = {(s.name, tuple(sorted(s.labels.items()))): s.value
                   for f in StatusCollector(lambda: v.status(0)).collect()
                   for s in f.samples}
        P = 'buildbot_mq_ordered_'
        self.assertEqual(samples[(P + 'stream_head', ())], 100)
        self.assertEqual(samples[(P + 'stream_first_position', ())], 1)
        self.assertEqual(samples[(P + 'leader', ())], 1)
        self.assertEqual(samples[(P + 'term', ())], 4)
        self.assertEqual(samples[(P + 'submitted_messages_total', ())], 1)
        a = (('master', 'a'),)
        self.assertEqual(samples[(P + 'master_delivered_position', a)], 97)
        self.assertEqual(samples[(P + 'master_lag', a)], 3)
        self.assertEqual(samples[(P + 'master_outbox_messages', a)], 2)
        self.assertEqual(samples[(P + 'master_skipped_messages_total', a)], 1)
        self.assertEqual(samples[(P + 'master_reconnects_total', a)], 3)
        self.assertNotIn((P + 'journal_rows', ()), samples)   # not told: not made up

    def test_commit_histograms(self):
        from buildbot_mq_ordered.router.monitor import metrics
        before = metrics.BATCH_SIZE._sum.get()
        metrics.observe_commit(0.002, 40)
        self.assertEqual(metrics.BATCH_SIZE._sum.get() - before, 40)


class Defaults(unittest.TestCase):

    def test_stale_after_several_report_intervals(self):
        from buildbot_mq_ordered.master.report import REPORT_EVERY
        self.assertGreaterEqual(clusterview.STALE_AFTER, 3 * REPORT_EVERY)


class HealthEndpoint(unittest.TestCase):

    def render(self, ok, line):
        from twisted.web.test.requesthelper import DummyRequest

        from buildbot_mq_ordered.router.monitor.web import Healthz
        request = DummyRequest([b''])
        body = Healthz(lambda: (ok, line)).render_GET(request)
        return request.responseCode, body

    def test_200_or_503_with_one_line(self):
        self.assertEqual(self.render(True, 'ok'), (200, b'ok\n'))
        v = ClusterView()
        v.on_info_failed('wamp.error.no_such_procedure', now=0)
        self.assertEqual(
            self.render(False, router_problem(v.status(0))),
            (503, b'no sequencer answers on this router (wamp.error.no_such_procedure)\n'))


class StatusCommandAsksTheLeader(unittest.TestCase):

    def test_a_router_without_a_leading_sequencer_is_asked_last(self):
        from buildbot_mq_ordered.cli.status import ask_next
        standby = {'sequencer': None}
        self.assertTrue(ask_next(standby, answered=1, routers=2))
        self.assertFalse(ask_next(standby, answered=2, routers=2))   # all asked: its answer
        self.assertFalse(ask_next({'sequencer': 'leading'}, answered=1, routers=2))
        self.assertFalse(ask_next(standby, answered=1, routers=1))
