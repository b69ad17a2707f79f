"""Buildbot masters in this process (Buildbot's ``RunMasterBase``) on
``ordered-wamp``: their configuration and basedir."""

import os
import shutil
import tempfile

from tests.support.router import shared_router


def mq_config():
    router = shared_router()
    return {'type': 'ordered-wamp', 'router_url': router.url, 'realm': router.realm}


def two_step_config():
    from buildbot.plugins import schedulers
    from buildbot.plugins import steps
    from buildbot.plugins import util

    f = util.BuildFactory()
    f.addStep(steps.ShellCommand(name='first', command=['echo', 'first step']))
    f.addStep(steps.ShellCommand(name='second', command=['echo', 'second step']))
    return {
        'mq': mq_config(),
        'schedulers': [schedulers.ForceScheduler(name='force', builderNames=['testy'])],
        'builders': [util.BuilderConfig(name='testy', workernames=['local1'], factory=f)],
    }


class FreshBasedir:
    """For a RunMasterBase: the master's basedir (its local worker builds
    inside) a fresh directory, removed after the master stopped, not one
    left in the current directory."""

    def mktemp(self):
        parent = tempfile.mkdtemp(prefix='bmo-master-')
        self.addCleanup(shutil.rmtree, parent, ignore_errors=True)
        return os.path.join(parent, 'basedir')
