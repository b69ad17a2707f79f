"""Buildbot's own integration suite on ``ordered-wamp``.

The integration tests of the installed Buildbot version come from its
source distribution (its wheel has none): downloaded once with pip into a
cache directory. They run twice at once, in two processes: on Buildbot's
default ``simple`` MQ, and with every ``RunMasterBase`` master switched to
``ordered-wamp`` on a router started with ``buildbot-mq-ordered router``
(tests/support/buildbot_suite.py does the switch and checks it took, master by
master). Every test that passes on ``simple`` must pass on ``ordered-wamp``;
tests that fail on both are printed, not counted.
"""

import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile

from twisted.trial import unittest

import buildbot

from buildbot_mq_ordered.load.processes import Router
from buildbot_mq_ordered.load.processes import terminate

# each run took about a minute on a 2-core machine; a hung test ends at
# trial's own 60 s timeout, so this bound is never the normal way out
SUITE_TIMEOUT = 1200
# tests that carry a patch (bytes) in their buildsets: dropped until 0.2
WITH_A_PATCH = [
    'buildbot.test.integration.test_try_client.Schedulers.test_jobdir_no_wait',
    'buildbot.test.integration.test_try_client.Schedulers.test_jobdir_wait',
    'buildbot.test.integration.test_try_client.Schedulers.test_userpass_no_wait',
    'buildbot.test.integration.test_try_client.Schedulers.test_userpass_wait',
    'buildbot.test.integration.test_try_client.Schedulers.test_userpass_wait_bytes',
    'buildbot.test.integration.test_integration_force_with_patch.ShellMaster.test_shell',
]
INTEGRATION = 'buildbot/test/integration/'


def cache_dir():
    base = os.environ.get('XDG_CACHE_HOME') or os.path.expanduser('~/.cache')
    return os.path.join(base, 'buildbot-mq-ordered')


def integration_source(version=buildbot.version):
    """A directory holding buildbot/test/integration/ of this Buildbot
    version, from its sdist (pip download, once per machine)."""
    root = os.path.join(cache_dir(), f'buildbot-{version}-integration')
    if os.path.isfile(os.path.join(root, INTEGRATION, '__init__.py')):
        return root
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run([sys.executable, '-m', 'pip', 'download', '--quiet', '--no-deps',
                        '--no-binary', ':all:', '-d', tmp, f'buildbot=={version}'],
                       check=True, timeout=600)
        sdist = os.path.join(tmp, f'buildbot-{version}.tar.gz')
        partial = root + '.partial'
        with tarfile.open(sdist) as tar:
            prefix = f'buildbot-{version}/'
            members = [m for m in tar.getmembers()
                       if m.name.startswith(prefix + INTEGRATION)]
            for m in members:
                m.name = m.name[len(prefix):]
            tar.extractall(partial, members=members, filter='data')
        os.replace(partial, root)
    return root


def start_suite(mq, source, workdir, router=None, tests=()):
    args = [sys.executable, '-m', 'tests.support.buildbot_suite', '--mq', mq, '--source', source,
            '--out', os.path.join(workdir, 'outcomes.json'), '--workdir', workdir]
    if router is not None:
        args += ['--router-url', router.url, '--realm', router.realm]
    args += list(tests)
    log = open(os.path.join(workdir, 'trial.log'), 'w')
    here = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    proc = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, cwd=here,
                            start_new_session=True)
    proc.log = log
    return proc


def counts(outcomes):
    out = {}
    for outcome in outcomes.values():
        out[outcome] = out.get(outcome, 0) + 1
    return ", ".join(f"{n} {o}" for o, n in sorted(out.items()))


class BuildbotIntegrationSuite(unittest.TestCase):
    """One run of both suites for the whole class (setUpClass)."""

    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix='bmo-bbsuite-')
        source = integration_source()
        router = Router().start()
        procs = {}
        try:
            for mq in ('simple', 'ordered-wamp'):
                workdir = os.path.join(cls.tmp, mq)
                os.makedirs(workdir)
                procs[mq] = start_suite(mq, source, workdir,
                                        router if mq == 'ordered-wamp' else None)
            for mq, proc in procs.items():
                try:
                    proc.wait(SUITE_TIMEOUT)
                except subprocess.TimeoutExpired:
                    raise AssertionError(f"Buildbot's integration suite on {mq} ran over "
                                         f"{SUITE_TIMEOUT}s; see {cls.tmp}/{mq}/trial.log")
            cls.results = {}
            for mq in procs:
                with open(os.path.join(cls.tmp, mq, 'outcomes.json')) as f:
                    cls.results[mq] = json.load(f)
            cls.retry_regressions(source, router)
        finally:
            terminate(list(procs.values()))
            for proc in procs.values():
                proc.log.close()
            router.cleanup()
        simple, ordered = cls.results['simple'], cls.results['ordered-wamp']
        print(f"\nBuildbot {buildbot.version} integration suite "
              f"(logs in {cls.tmp}):\n"
              f"  simple:       {counts(simple['outcomes'])} ({simple['seconds']}s)\n"
              f"  ordered-wamp: {counts(ordered['outcomes'])} ({ordered['seconds']}s), "
              f"{len(ordered['switched'])} masters on ordered-wamp")
        both = sorted(t for t, o in ordered['outcomes'].items()
                      if o in ('failed', 'error') and simple['outcomes'].get(t) == o)
        for t in both:
            print(f"  fails on both: {t}")

    @classmethod
    def tearDownClass(cls):
        # the trial logs are worth keeping only when something regressed
        if not cls.regressions():
            shutil.rmtree(cls.tmp, ignore_errors=True)

    @classmethod
    def retry_regressions(cls, source, router):
        """Run once more, alone, each test that passed on simple and failed on
        ordered-wamp: Buildbot's suite has timing-sensitive tests (one of its
        PB tests timed out on simple in one of our runs). Only a test that
        fails twice counts; one that passed the second time is printed."""
        regressions = cls.regressions()
        if not regressions:
            return {}
        workdir = os.path.join(cls.tmp, 'ordered-wamp-retry')
        os.makedirs(workdir)
        proc = start_suite('ordered-wamp', source, workdir, router, tests=regressions)
        try:
            proc.wait(SUITE_TIMEOUT)
        finally:
            terminate([proc])
            proc.log.close()
        with open(os.path.join(workdir, 'outcomes.json')) as f:
            retry = json.load(f)
        first = cls.results['ordered-wamp']
        for t in regressions:
            print(f"  retried {t}: {first['outcomes'].get(t, 'not run')}, then "
                  f"{retry['outcomes'].get(t, 'not run')}")
            if retry['outcomes'].get(t) == 'ok':
                first['outcomes'][t] = 'ok'
        return retry

    @classmethod
    def regressions(cls):
        simple = cls.results['simple']['outcomes']
        ordered = cls.results['ordered-wamp']['outcomes']
        return sorted(t for t, o in simple.items() if o == 'ok' and ordered.get(t) != 'ok')

    def outcomes(self, mq):
        return self.results[mq]['outcomes']

    def test_every_test_passing_on_simple_passes_on_ordered_wamp(self):
        ordered = self.results['ordered-wamp']
        regressions = self.regressions()
        self.assertEqual(regressions, [], "\n\n".join(
            f"{t}: {ordered['outcomes'].get(t, 'not run')} (twice)\n"
            f"{ordered['details'].get(t, '')}" for t in regressions))

    def test_the_suite_ran(self):
        # the same tests on both, and most of them passing: a broken source
        # tree or harness would otherwise compare nothing with nothing
        simple = self.outcomes('simple')
        self.assertEqual(set(simple), set(self.outcomes('ordered-wamp')))
        # (Buildbot 4.3.0: 145 of 161 pass; its skips need docker, Git-only
        # tarballs, or $RUN_FLAKY_TESTS)
        self.assertGreater(sum(o == 'ok' for o in simple.values()), 0.8 * len(simple),
                           counts(simple))

    def test_masters_ran_ordered_wamp(self):
        # the runner fails a test whose master is not on ordered-wamp; here:
        # masters were started, and the try tests' masters among them
        switched = self.results['ordered-wamp']['switched']
        self.assertGreater(len(switched), 50)
        for t in WITH_A_PATCH:
            self.assertIn(t, switched)
        self.assertEqual(self.results['simple']['switched'], [])

    def test_try_jobs_and_forced_builds_with_a_patch_complete(self):
        ordered = self.outcomes('ordered-wamp')
        self.assertEqual({t: ordered.get(t) for t in WITH_A_PATCH},
                         {t: 'ok' for t in WITH_A_PATCH})
