"""Real Buildbot masters on ``ordered-wamp``: Buildbot's own integration
harness (``RunMasterBase``: a ``BuildMaster`` with a local worker in this
process, on the real reactor) with ``c['mq']`` pointing at a real router.

Builds must succeed and nothing may be logged as an error: trial fails a test
on any logged error, and these tests flush none."""

import os
import shutil
import tempfile

from twisted.internet import defer

from buildbot.process.results import SUCCESS
from buildbot.test.util.integration import RunMasterBase

from buildbot_mq_ordered.master.mq import OrderedWampMQ
from tests.support.buildbotmaster import FreshBasedir
from tests.support.buildbotmaster import mq_config
from tests.support.buildbotmaster import two_step_config
from tests.support.router import router_of_kind
from tests.support.router import shared_router


def trigger_config():
    # the layout of Buildbot's own integration test_trigger.py
    from buildbot.plugins import schedulers
    from buildbot.plugins import steps
    from buildbot.plugins import util

    f = util.BuildFactory()
    f.addStep(steps.ShellCommand(command=['echo', 'hello']))
    f.addStep(steps.Trigger(schedulerNames=['trigsched'], waitForFinish=True,
                            updateSourceStamp=True))
    f.addStep(steps.ShellCommand(command=['echo', 'world']))
    f2 = util.BuildFactory()
    f2.addStep(steps.ShellCommand(command=['echo', 'ola']))
    return {
        'mq': mq_config(),
        'schedulers': [
            schedulers.Triggerable(name='trigsched', builderNames=['build']),
            schedulers.ForceScheduler(name='force', builderNames=['testy']),
        ],
        'builders': [
            util.BuilderConfig(name='testy', workernames=['local1'], factory=f),
            util.BuilderConfig(name='build', workernames=['local1'], factory=f2),
        ],
    }


class OrderedWampMaster(FreshBasedir, RunMasterBase):
    timeout = 60

    def assertOrderedWamp(self, router=None):
        # the build really went over the router, not over a fallback MQ
        impl = self.master.mq.impl
        self.assertIsInstance(impl, OrderedWampMQ)
        self.assertEqual(impl.options['router_url'], (router or shared_router()).url)
        self.assertGreater(impl.stats['produced'], 0)
        self.assertGreater(impl.stats['delivered'], 0)
        self.assertEqual(impl.stats['rejected'], 0)
        self.assertEqual(impl.stats['skipped'], 0)

    @defer.inlineCallbacks
    def test_forced_build_with_two_shell_steps(self):
        yield self.setup_master(two_step_config())

        build = yield self.doForceBuild(wantSteps=True, wantLogs=True)

        self.assertEqual(build['results'], SUCCESS)
        self.assertTrue(build['complete'])
        shell_steps = [s for s in build['steps'] if s['name'] in ('first', 'second')]
        self.assertEqual([(s['name'], s['results']) for s in shell_steps],
                         [('first', SUCCESS), ('second', SUCCESS)])
        found = yield self.checkBuildStepLogExist(build, ['first step', 'second step'],
                                                  onlyStdout=True)
        self.assertTrue(found)
        self.assertOrderedWamp()

    @defer.inlineCallbacks
    def test_trigger_step_waits_for_triggered_build(self):
        yield self.setup_master(trigger_config())

        build = yield self.doForceBuild(wantSteps=True, wantLogs=True)

        self.assertEqual(build['results'], SUCCESS)
        trigger = [s for s in build['steps'] if s['name'] == 'trigger']
        self.assertEqual(len(trigger), 1)
        self.assertEqual(trigger[0]['state_string'], 'triggered trigsched, 1 success')
        self.assertEqual(trigger[0]['results'], SUCCESS)
        builds = yield self.master.data.get(('builds',))
        self.assertEqual(len(builds), 2)
        self.assertEqual([b['results'] for b in builds], [SUCCESS, SUCCESS])
        self.assertTrue(all(b['complete'] for b in builds))
        # the triggered build finished before the triggering one went on
        triggered = [b for b in builds if b['buildid'] != build['buildid']][0]
        self.assertLessEqual(triggered['complete_at'], build['complete_at'])
        for b in builds:
            ok = yield self.checkBuildStepLogExist(
                b, ['hello', 'world'] if b['buildid'] == build['buildid'] else ['ola'],
                onlyStdout=True)
            self.assertTrue(ok)
        self.assertOrderedWamp()

    @defer.inlineCallbacks
    def test_secret_from_buildbot_secret_provider(self):
        # the router admits only known masters; this one's secret comes from
        # Buildbot's secrets providers (util.Secret), as an operator keeps it
        from buildbot.plugins import secrets
        from buildbot.plugins import util
        router = router_of_kind('auth')
        secret_dir = tempfile.mkdtemp(prefix='bmo-secrets-')
        self.addCleanup(shutil.rmtree, secret_dir, ignore_errors=True)
        path = os.path.join(secret_dir, 'mq-secret')
        with open(path, 'w') as f:
            f.write('s3cret-one\n')
        os.chmod(path, 0o600)  # SecretInAFile insists
        config = two_step_config()
        config['mq'] = {'type': 'ordered-wamp', 'router_url': router.url,
                        'realm': router.realm, 'authid': 'master1',
                        'secret': util.Secret('mq-secret')}
        config['secretsProviders'] = [secrets.SecretInAFile(dirname=secret_dir)]
        yield self.setup_master(config)

        build = yield self.doForceBuild(wantSteps=True)

        self.assertEqual(build['results'], SUCCESS)
        self.assertOrderedWamp(router)
