"""What each process imports (its ``sys.modules``, in a fresh interpreter):
the router command and the Crossbar worker that runs the sequencer never
import Buildbot; master.cfg's import line registers the MQ type where
Buildbot is loaded, and only there."""

import json
import subprocess
import sys

from twisted.trial import unittest

REPORT = ("import json, sys; print(json.dumps(sorted({m.split('.')[0] for m in sys.modules})))")


def top_level_modules(code):
    """The top-level packages a fresh interpreter holds after running code."""
    out = subprocess.run([sys.executable, '-c', code + '\n' + REPORT], capture_output=True,
                         text=True, timeout=120)
    if out.returncode:
        raise AssertionError(out.stderr)
    return set(json.loads(out.stdout.splitlines()[-1]))


class RouterHost(unittest.TestCase):

    def test_the_router_command_imports_no_buildbot(self):
        # what `buildbot-mq-ordered router` imports before it spawns Crossbar:
        # every command's parser, the router's checks and its node config
        mods = top_level_modules(
            "from buildbot_mq_ordered.cli import main\n"
            "from buildbot_mq_ordered.cli import router\n"
            "from buildbot_mq_ordered.router import hide_bjdata, journalurl, nodeconfig\n"
            "try:\n    main(['router', '--help'])\nexcept SystemExit:\n    pass\n")
        self.assertIn('buildbot_mq_ordered', mods)
        self.assertNotIn('buildbot', mods)
        self.assertNotIn('autobahn', mods)

    def test_the_crossbar_worker_imports_no_buildbot(self):
        # what the router worker imports: Crossbar's router worker, then the
        # classes the node config names
        mods = top_level_modules(
            "import crossbar.worker.router\n"
            "from buildbot_mq_ordered.router.nodeconfig import node_config\n"
            "import importlib\n"
            "cfg = node_config(8080)\n"
            "for c in cfg['workers'][0]['components']:\n"
            "    module, _, cls = c['classname'].rpartition('.')\n"
            "    getattr(importlib.import_module(module), cls)\n"
            "from buildbot_mq_ordered.router.journal import postgres\n")
        self.assertIn('crossbar', mods)
        self.assertIn('psycopg', mods)
        self.assertNotIn('buildbot', mods)


class MasterCfg(unittest.TestCase):

    def test_the_import_line_registers_where_buildbot_is_loaded(self):
        # as `buildbot checkconfig` and a master's start run master.cfg
        mods = top_level_modules(
            "import buildbot.config.master\n"
            "import buildbot_mq_ordered\n"
            "from buildbot.mq.connector import MQConnector\n"
            "assert 'ordered-wamp' in MQConnector.classes, MQConnector.classes\n")
        self.assertIn('buildbot', mods)

    def test_the_package_alone_imports_no_buildbot(self):
        mods = top_level_modules("import buildbot_mq_ordered\n")
        self.assertNotIn('buildbot', mods)
