"""The bench's driver: a router per MQ, started once (and again if one
dies), a warm-up, then the runs - every offered rate for every MQ, the MQ
that goes first alternating - each measured as it ends."""

import math
import os
import platform
import sys
import time

from buildbot_mq_ordered.load import benchfigures
from buildbot_mq_ordered.load import benchreport
from buildbot_mq_ordered.load.benchfigures import FLAT_OUT
from buildbot_mq_ordered.load.benchfigures import ORDERED
from buildbot_mq_ordered.load.benchfigures import ORDERED_PG
from buildbot_mq_ordered.load.benchfigures import STOCK
from buildbot_mq_ordered.load.benchfigures import measure
from buildbot_mq_ordered.load.benchreport import describe
from buildbot_mq_ordered.load.driver import say
from buildbot_mq_ordered.load.nodes import NodeProcess
from buildbot_mq_ordered.load.nodes import produced_counts
from buildbot_mq_ordered.load.nodes import run_nodes
from buildbot_mq_ordered.load.processes import Router
from buildbot_mq_ordered.load.processes import terminate

RSS_EVERY = 0.25
WARMUP_RATE = 300.0


class Bench:
    """The runs of one ``bench`` command and what they measured."""

    def __init__(self, args, rates, mqs, tmp, routers):
        self.args = args
        self.rates = rates
        self.mqs = mqs
        self.tmp = tmp
        self.routers = routers
        self.runs = []
        self.nodes = []
        self.router_peak = {}
        self.router_idle = {}

    # -- routers -------------------------------------------------------------
    def start_routers(self):
        for mq in self.mqs:
            extra = {STOCK: ['--open-realm'],
                     ORDERED_PG: ['--journal', self.args.postgresql or '']}.get(mq, [])
            self.routers[mq] = Router(extra_args=extra, cbdir=os.path.join(self.tmp, mq))
        say("routers: starting " + ", ".join(
            f"{mq} on 127.0.0.1:{r.port}" + (" (--open-realm)" if mq == STOCK else "")
            for mq, r in self.routers.items()) + " ...")
        t0 = time.monotonic()
        Router.start_together(list(self.routers.values()))
        say(f"routers: ready in {time.monotonic() - t0:.1f}s")
        if self.args.warmup > 0:
            for mq in self.mqs:
                self.ensure_router(mq)
                r = self.run_one(mq, WARMUP_RATE, 'warmup', duration=self.args.warmup)
                say(f"warm-up {mq}: " + ("done" if r['ok'] else r['problem']))
        for mq, router in self.routers.items():
            self.router_idle[mq] = router.rss()
            self.router_peak.pop(mq, None)

    def ensure_router(self, mq):
        r = self.routers[mq]
        if not r.running:
            say(f"router for {mq} is gone (exit {r.proc.returncode}); starting it again")
            r.stop()
            r.start()

    # -- runs ----------------------------------------------------------------
    def schedule(self):
        k = 0
        for rep in range(self.args.repeat):
            for rate in self.rates:
                order = self.mqs if k % 2 == 0 else list(reversed(self.mqs))
                for mq in order:
                    yield rep, rate, mq
                k += 1

    def run_all(self):
        plan = list(self.schedule())
        for n, (rep, rate, mq) in enumerate(plan, 1):
            self.ensure_router(mq)
            result = self.run_one(mq, rate, rep)
            self.runs.append(result)
            say(f"[{n}/{len(plan)}] " + describe(result))

    def run_one(self, mq, rate, rep, duration=None):
        a = self.args
        m = a.masters
        run_duration = a.duration if duration is None else duration
        router = self.routers[mq]
        flat = rate == FLAT_OUT
        if a.messages is not None and duration is None:
            per_master, duration = a.messages, 0
            # a bound, not a figure: flat out, assume at least 500 messages/s
            seconds = per_master * m / (rate if not flat else 500)
        elif flat:
            per_master, duration = 10 ** 9, run_duration
            seconds = run_duration
        else:
            per_master, duration = max(1, math.ceil(rate * run_duration / m)), 0
            seconds = run_duration
        run_dir = os.path.join(self.tmp, f'{mq}-{rate}-{rep}')
        os.makedirs(run_dir)
        short = {ORDERED: 'ow', ORDERED_PG: 'op'}.get(mq, 'sw')
        self.nodes = [
            NodeProcess(router.url, f'{short}{i}', os.path.join(run_dir, f'm{i}.json'),
                        mq=STOCK if mq == STOCK else ORDERED, messages=per_master, expect=0,
                        rate=0 if flat else rate / m, payload=a.payload,
                        distinct_keys=a.distinct_keys, index=i, nodes=m,
                        duration=duration, window=a.window, record=False,
                        timeout=seconds + 120)
            for i in range(m)]
        peak = [router.rss()]
        last = [0.0]

        def sample():
            if time.monotonic() - last[0] >= RSS_EVERY:
                last[0] = time.monotonic()
                peak[0] = max(peak[0], router.rss())
        error = None
        try:
            results = run_nodes(self.nodes, timeout=seconds + 150, on_tick=sample,
                                tick=RSS_EVERY)
        except RuntimeError as e:
            error = str(e)
            results = [None] * m
        finally:
            peak[0] = max(peak[0], router.rss())
            self.stop_nodes()
        self.router_peak[mq] = max(self.router_peak.get(mq, 0), peak[0])
        result = measure(mq, rate, rep, produced_counts(self.nodes, results), results,
                         peak[0], error)
        idle = self.router_idle.get(mq)
        result['router_idle_rss_mb'] = idle / 2 ** 20 if idle else None
        return result

    def stop_nodes(self):
        terminate([n.proc for n in self.nodes], grace=10)
        for n in self.nodes:
            n.close()

    # -- figures ---------------------------------------------------------------
    def table(self):
        return benchfigures.table(self.runs, self.rates, self.mqs)

    def ratios(self):
        return benchfigures.all_ratios(self.runs, self.rates, self.mqs)

    def report(self):
        return benchreport.report(self.table(), self.ratios(), self.runs, self.rates,
                                  self.args.repeat, self.router_idle)

    def figures(self):
        a = self.args
        return {
            'command': ['buildbot-mq-ordered'] + sys.argv[1:],
            'config': {'masters': a.masters, 'rates': [str(r) for r in self.rates],
                       'duration': a.duration, 'messages': a.messages,
                       'payload': a.payload, 'distinct_keys': a.distinct_keys,
                       'window': a.window, 'repeat': a.repeat, 'mqs': self.mqs},
            'host': {'cpus': os.cpu_count(), 'python': platform.python_version(),
                     'platform': platform.platform()},
            'runs': self.runs,
            'table': [dict(r, rate=str(r['rate'])) for r in self.table()],
            'ratios': self.ratios(),
            'router_peak_rss_mb': {mq: v / 2 ** 20 for mq, v in self.router_peak.items()},
            'router_idle_rss_mb': {mq: v / 2 ** 20 for mq, v in self.router_idle.items()},
        }
