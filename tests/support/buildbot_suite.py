"""Run Buildbot's own integration tests on a chosen MQ; write each test's
outcome to a JSON file.

    python -m tests.support.buildbot_suite --source DIR --out FILE --mq simple
    python -m tests.support.buildbot_suite --source DIR --out FILE --mq ordered-wamp \\
        --router-url ws://127.0.0.1:PORT/ws [--realm buildbot] [TEST ...]

``--source`` is a directory holding ``buildbot/test/integration/`` from the
source distribution of the installed Buildbot (its wheel lacks the tests);
the rest of ``buildbot.test`` comes from the installed package.

With ``--mq ordered-wamp`` every master that Buildbot's ``RunMasterBase``
starts gets ``c['mq']`` pointing at the router, including on reconfig, and
the test fails unless the master really runs ``OrderedWampMQ`` on that URL.
Run by tests/integration/test_buildbot_suite.py; usable alone to chase one test.
"""

import argparse
import json
import os
import sys
import time

from twisted.internet import defer
from twisted.python.failure import Failure
from twisted.trial import reporter
from twisted.trial import runner

import buildbot.test

import tests  # noqa: F401  the project's one set of warning filters

PACKAGE = 'buildbot.test.integration'


class RecordingReporter(reporter.TreeReporter):
    """Trial's tree output, and each test's outcome (the first bad one wins:
    a test that failed and then errored in its cleanup counts as failed)."""

    outcomes = {}
    details = {}

    def _record(self, test, outcome, failure=None):
        self.outcomes.setdefault(test.id(), outcome)
        if failure is not None:
            if not hasattr(failure, 'getTraceback'):
                failure = Failure(*failure)
            self.details.setdefault(test.id(), failure.getTraceback()[-4000:])

    def addSuccess(self, test):
        super().addSuccess(test)
        self._record(test, 'ok')

    def addFailure(self, test, fail):
        super().addFailure(test, fail)
        self._record(test, 'failed', fail)

    def addError(self, test, error):
        super().addError(test, error)
        self._record(test, 'error', error)

    def addSkip(self, test, reason):
        super().addSkip(test, reason)
        self._record(test, 'skipped')

    def addExpectedFailure(self, test, failure, todo=None):
        super().addExpectedFailure(test, failure, todo)
        self._record(test, 'expected-failure')

    def addUnexpectedSuccess(self, test, todo=None):
        super().addUnexpectedSuccess(test, todo)
        self._record(test, 'unexpected-success')


def switch_to_ordered_wamp(mq, switched):
    """Every RunMasterBase master on ``mq``; ``switched`` collects the ids of
    the tests whose masters were checked to run OrderedWampMQ."""
    from buildbot.test.util import integration

    from buildbot_mq_ordered.master.mq import OrderedWampMQ

    setup_master = integration.RunMasterBase.setup_master
    load_config = integration.DictLoader.loadConfig

    @defer.inlineCallbacks
    def setup_master_on_ordered_wamp(self, config_dict, *args, **kwargs):
        config_dict['mq'] = dict(mq)
        yield setup_master(self, config_dict, *args, **kwargs)
        impl = self.master.mq.impl
        if not isinstance(impl, OrderedWampMQ) or \
                impl.options['router_url'] != mq['router_url']:
            raise AssertionError(f"the master runs {impl!r}, not ordered-wamp on "
                                 f"{mq['router_url']}")
        # a test that reconfigures hands the loader a new dict without 'mq'
        self.master.config_loader.ordered_wamp = mq
        switched.append(self.id())

    def load_config_on_ordered_wamp(self):
        if getattr(self, 'ordered_wamp', None):
            self.config_dict['mq'] = dict(self.ordered_wamp)
        return load_config(self)

    integration.RunMasterBase.setup_master = setup_master_on_ordered_wamp
    integration.DictLoader.loadConfig = load_config_on_ordered_wamp


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--source', required=True,
                   help="directory with buildbot/test/integration/ from the sdist")
    p.add_argument('--out', required=True, help="JSON file for the outcomes")
    p.add_argument('--mq', choices=['simple', 'ordered-wamp'], required=True)
    p.add_argument('--router-url')
    p.add_argument('--realm', default='buildbot')
    p.add_argument('--workdir', default='.', help="where trial's _trial_temp goes")
    p.add_argument('tests', nargs='*', default=[PACKAGE])
    args = p.parse_args(argv)
    if args.mq == 'ordered-wamp' and not args.router_url:
        p.error("--mq ordered-wamp needs --router-url")

    # buildbot.test.integration from the sdist, beside the installed buildbot.test
    buildbot.test.__path__.append(os.path.join(os.path.abspath(args.source),
                                               'buildbot', 'test'))
    switched = []
    if args.mq == 'ordered-wamp':
        switch_to_ordered_wamp({'type': 'ordered-wamp', 'router_url': args.router_url,
                                'realm': args.realm}, switched)

    suite = runner.TestLoader().loadByNames(args.tests, recurse=True)
    os.makedirs(args.workdir, exist_ok=True)
    trial = runner.TrialRunner(RecordingReporter, stream=sys.stdout,
                               workingDirectory=os.path.join(args.workdir, '_trial_temp'))
    started = time.monotonic()
    trial.run(suite)
    outcomes = RecordingReporter.outcomes
    with open(args.out, 'w') as f:
        json.dump({'mq': args.mq, 'outcomes': outcomes, 'switched': switched,
                   'details': RecordingReporter.details,
                   'seconds': round(time.monotonic() - started, 1)}, f, indent=1)
    counts = {}
    for outcome in outcomes.values():
        counts[outcome] = counts.get(outcome, 0) + 1
    print(f"{args.mq}: " + ", ".join(f"{n} {o}" for o, n in sorted(counts.items())) +
          f"; {len(switched)} masters switched", flush=True)
    return 0


if __name__ == '__main__':
    sys.exit(main())
