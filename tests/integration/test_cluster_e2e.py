"""A real cluster, end to end, as docs/cluster.rst sets it up: one router (and
then two on one PostgreSQL journal, the leader killed mid-build), two
``buildbot`` masters (separate processes, ``buildbot create-master`` +
``master.cfg.example``, ``buildbot start``) sharing one PostgreSQL database,
and one ``buildbot-worker`` connected to master 1.

Builds are forced through master 1's REST API; each master records what its
MQ delivers (routing key, stream position) with a small service appended to
its master.cfg, and both must have delivered the same messages in the same
order.

PostgreSQL: ``BMO_TEST_PG_URL`` (default
``postgresql://postgres:postgres@127.0.0.1:5432/postgres``) is where this
test creates, and afterwards drops, a database of its own; ``bash
tests/services.sh`` provides that server.
"""

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid

from twisted.trial import unittest

from buildbot_mq_ordered.load.processes import free_port
from tests.support.router import Router

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
EXAMPLE_CFG = os.path.join(ROOT, 'master.cfg.example')
BIN = os.path.dirname(sys.executable)
BUILDBOT = os.path.join(BIN, 'buildbot')
BUILDBOT_WORKER = os.path.join(BIN, 'buildbot-worker')

PG_URL = os.environ.get('BMO_TEST_PG_URL',
                        'postgresql://postgres:postgres@127.0.0.1:5432/postgres')
# the driver the masters use (setup.py's test extra installs psycopg2-binary);
# a bare postgresql:// means psycopg 3 to SQLAlchemy 2.1, psycopg2 to 2.0
PG_DRIVER = 'postgresql+psycopg2'

BUILDS = 5
COMMAND_TIMEOUT = 90    # any one buildbot / buildbot-worker command
START_TIMEOUT = 60      # `buildbot start --start_timeout`
WORKER_TIMEOUT = 60     # the worker shows up as connected to master 1
BUILDS_TIMEOUT = 120    # all forced builds finished
DELIVERY_TIMEOUT = 30   # both masters delivered the builds' last messages
POLL_INTERVAL = 0.5     # REST API / delivery file polling, always under a deadline

WORKER_NAME = 'e2e-worker'
WORKER_PASSWORD = 'e2e-pass'

# Appended to master.cfg.example in each master's basedir: a service that
# consumes every routing key (filters of lengths 1..10, all wildcards: each
# key matches exactly one of them) and appends [routing_key, stream position]
# as a JSON line to the file named by BMO_DELIVERIES.
RECORDER_CFG = '''

####### TEST ONLY (tests/integration/test_cluster_e2e.py): record every delivered message
import json as _json
from twisted.internet import defer as _defer
from buildbot.util import service as _service


class DeliveryRecorder(_service.BuildbotService):
    name = 'bmo-delivery-recorder'

    def reconfigService(self, path):
        self.path = path
        return _defer.succeed(None)

    @_defer.inlineCallbacks
    def startService(self):
        yield super().startService()
        self.out = open(self.path, 'a', encoding='utf-8')
        self.qrefs = []
        for n in range(1, 11):
            qref = yield self.master.mq.startConsuming(self.record, (None,) * n)
            self.qrefs.append(qref)

    def record(self, key, data):
        pos = self.master.mq.impl.delivery[0]
        self.out.write(_json.dumps([list(key), pos]) + '\\n')
        self.out.flush()

    @_defer.inlineCallbacks
    def stopService(self):
        for qref in self.qrefs:
            yield qref.stopConsuming()
        self.out.close()
        yield super().stopService()


c.setdefault('services', []).append(DeliveryRecorder(path=os.environ['BMO_DELIVERIES']))
'''


def run(argv, env=None, cwd=None, timeout=COMMAND_TIMEOUT):
    """Run a command to completion (bounded); returns (returncode, output)."""
    proc = subprocess.run(argv, env=env, cwd=cwd, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, timeout=timeout)
    return proc.returncode, proc.stdout.decode(errors='replace')


def tail(path, n=60):
    try:
        with open(path, errors='replace') as f:
            return ''.join(f.readlines()[-n:])
    except OSError as e:
        return f'({path}: {e})'


def pid_alive(basedir):
    try:
        with open(os.path.join(basedir, 'twistd.pid')) as f:
            pid = int(f.read().strip())
        os.kill(pid, 0)
        return pid
    except (OSError, ValueError):
        return None


def read_deliveries(path):
    """[(routing_key tuple, pos)] recorded so far (complete lines only)."""
    try:
        with open(path, encoding='utf-8') as f:
            text = f.read()
    except FileNotFoundError:
        return []
    return [(tuple(key), pos) for key, pos in
            (json.loads(line) for line in text.split('\n')[:-1] if line)]


def build_messages(deliveries):
    return [(key, pos) for key, pos in deliveries
            if key[0] in ('builds', 'steps', 'buildrequests')]


class Master:
    """One buildmaster, driven with the `buildbot` command."""

    def __init__(self, name, basedir, env):
        self.name = name
        self.basedir = basedir
        self.deliveries = os.path.join(basedir, 'deliveries.jsonl')
        self.web_port = free_port()
        self.pb_port = free_port()
        self.env = dict(env,
                        BUILDBOT_MASTER_NAME=name,
                        BUILDBOT_WEB_PORT=f'tcp:{self.web_port}:interface=127.0.0.1',
                        BUILDBOT_URL=f'http://127.0.0.1:{self.web_port}/',
                        BUILDBOT_WORKER_PORT=f'tcp:{self.pb_port}:interface=127.0.0.1',
                        BMO_DELIVERIES=self.deliveries)

    @property
    def log(self):
        return os.path.join(self.basedir, 'twistd.log')

    @property
    def api(self):
        return f'http://127.0.0.1:{self.web_port}/api/v2/'

    def get(self, path):
        with urllib.request.urlopen(self.api + path, timeout=10) as r:
            return json.load(r)

    def rpc(self, path, method, params):
        body = json.dumps({'jsonrpc': '2.0', 'method': method, 'id': 1,
                           'params': params}).encode()
        req = urllib.request.Request(self.api + path, data=body, method='POST',
                                     headers={'Content-Type': 'application/json'})
        with urllib.request.urlopen(req, timeout=30) as r:
            return json.load(r)


class MasterCfgExample(unittest.TestCase):
    """master.cfg.example passes `buildbot checkconfig`, with the package's
    own checks of c['mq'] (the `import buildbot_mq_ordered` line)."""

    timeout = 120

    def checkconfig(self, **env):
        basedir = tempfile.mkdtemp(prefix='bmo-checkconfig-')
        self.addCleanup(shutil.rmtree, basedir, ignore_errors=True)
        shutil.copy(EXAMPLE_CFG, os.path.join(basedir, 'master.cfg'))
        return run([BUILDBOT, 'checkconfig', basedir], env=dict(os.environ, **env))

    def test_checkconfig(self):
        rc, out = self.checkconfig(
            BUILDBOT_MQ_ROUTER_URL='ws://127.0.0.1:8080/ws',
            BUILDBOT_MQ_REALM='buildbot',
            BUILDBOT_DB_URL='postgresql+psycopg2://buildbot:buildbot@127.0.0.1:5432/buildbot',
            BUILDBOT_MASTER_NAME='master1',
            BUILDBOT_WEB_PORT='tcp:8010:interface=127.0.0.1',
            BUILDBOT_WORKER_PORT='tcp:9989:interface=127.0.0.1')
        self.assertEqual(rc, 0, out)
        self.assertIn('Config file is good!', out)
        self.assertNotIn('Warning', out)

    def test_checkconfig_reports_a_bad_router_url(self):
        rc, out = self.checkconfig(BUILDBOT_MQ_ROUTER_URL='http://127.0.0.1:8080/ws')
        self.assertNotEqual(rc, 0, out)
        self.assertIn("c['mq']['router_url'] must be a ws:// or wss:// URL", out)


class Cluster(unittest.TestCase):
    """Two masters, one router, one worker, one PostgreSQL database."""

    timeout = 300

    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix='bmo-cluster-')
        self.addCleanup(shutil.rmtree, self.tmp, ignore_errors=True)
        self.db_url = self.create_database()
        self.routers = self.start_routers()
        self.router = self.routers[0]
        env = dict(os.environ,
                   BUILDBOT_MQ_ROUTER_URL=','.join(r.url for r in self.routers),
                   BUILDBOT_MQ_REALM=self.router.realm,
                   BUILDBOT_DB_URL=self.db_url,
                   BUILDBOT_WORKER_NAME=WORKER_NAME,
                   BUILDBOT_WORKER_PASSWORD=WORKER_PASSWORD)
        self.masters = [Master(f'master{i}', os.path.join(self.tmp, f'master{i}'), env)
                        for i in (1, 2)]
        self.worker_dir = os.path.join(self.tmp, 'worker')
        # runs first: whatever a failed test left running
        self.addCleanup(self.stop_everything)

    def start_routers(self):
        router = Router(cbdir=os.path.join(self.tmp, 'router'))
        os.makedirs(router.cbdir)
        self.addCleanup(router.stop)
        router.start()
        return [router]

    def while_builds_run(self):
        """A fault to inject once the builds are forced (none here)."""

    # -- the database ------------------------------------------------------

    def create_database(self):
        import sqlalchemy as sa
        from sqlalchemy.engine import make_url
        url = make_url(PG_URL)
        if url.drivername == 'postgresql':
            url = url.set(drivername=PG_DRIVER)
        try:
            admin = sa.create_engine(url, isolation_level='AUTOCOMMIT',
                                     connect_args={'connect_timeout': 5})
            with admin.connect() as conn:
                conn.execute(sa.text('select 1'))
        except ImportError as e:
            self.fail(f"no PostgreSQL driver ({e}): pip install -e '.[test]' "
                      "(psycopg2-binary)")
        except Exception as e:
            self.fail(f"cannot reach PostgreSQL at {PG_URL} ({type(e).__name__}: {e}); "
                      "run `bash tests/services.sh` (as root) to install and start it, "
                      "or point BMO_TEST_PG_URL at a server where this user may "
                      "create databases")
        self.addCleanup(admin.dispose)
        name = 'bmo_e2e_' + uuid.uuid4().hex[:12]
        with admin.connect() as conn:
            conn.execute(sa.text(f'CREATE DATABASE {name}'))
        self.addCleanup(self.drop_database, admin, name)
        return url.set(database=name).render_as_string(hide_password=False)

    def drop_database(self, admin, name):
        import sqlalchemy as sa
        with admin.connect() as conn:
            conn.execute(sa.text('SELECT pg_terminate_backend(pid) FROM pg_stat_activity '
                                 'WHERE datname = :name AND pid <> pg_backend_pid()'),
                         {'name': name})
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS {name}'))

    # -- processes ---------------------------------------------------------

    def check(self, argv, env=None, what=None, log=None):
        started = time.monotonic()
        rc, out = run(argv, env=env)
        print(f"{time.monotonic() - started:6.1f}s {' '.join(argv[:2])}")
        if rc != 0:
            self.fail(f"{what or ' '.join(argv)} failed ({rc}):\n{out}"
                      + (f"\n--- {log}:\n{tail(log)}" if log else ''))
        return out

    def create_master(self, m):
        self.check([BUILDBOT, 'create-master', '--db', self.db_url, m.basedir], env=m.env)
        with open(EXAMPLE_CFG) as f:
            cfg = f.read()
        with open(os.path.join(m.basedir, 'master.cfg'), 'w') as f:
            f.write(cfg + RECORDER_CFG)
        self.check([BUILDBOT, 'checkconfig', m.basedir], env=m.env)

    def start_master(self, m):
        self.check([BUILDBOT, 'start', '--start_timeout', str(START_TIMEOUT), m.basedir],
                   env=m.env, what=f'buildbot start {m.name}', log=m.log)

    def stop_everything(self):
        # fallback for a failed test; the test itself stops everything in order
        dirs = [self.worker_dir] + [m.basedir for m in self.masters]
        for cmd, basedir in zip([BUILDBOT_WORKER, BUILDBOT, BUILDBOT], dirs):
            if pid_alive(basedir):
                try:
                    run([cmd, 'stop', basedir], timeout=30)
                except subprocess.TimeoutExpired:
                    pass
            pid = pid_alive(basedir)
            if pid:
                os.kill(pid, signal.SIGKILL)

    # -- waiting (bounded) -------------------------------------------------

    def wait_until(self, what, condition, timeout, detail=lambda: ''):
        """Poll condition() every POLL_INTERVAL seconds, at most timeout seconds:
        the REST API and the delivery files offer nothing to wait on."""
        started = time.monotonic()
        deadline = started + timeout
        while True:
            result = condition()
            if result:
                print(f"{time.monotonic() - started:6.1f}s {what}")
                return result
            if time.monotonic() > deadline:
                self.fail(f"timed out after {timeout}s waiting for {what}\n{detail()}")
            time.sleep(POLL_INTERVAL)

    def logs(self):
        return '\n'.join(f"--- {m.name} twistd.log:\n{tail(m.log)}" for m in self.masters)

    # -- the test ----------------------------------------------------------

    def test_two_masters_deliver_the_same_build_messages_in_one_order(self):
        m1 = self.masters[0]

        # two masters, one database, one router
        for m in self.masters:
            self.create_master(m)
        for m in self.masters:
            self.start_master(m)

        # one worker, connected to master 1
        self.check([BUILDBOT_WORKER, 'create-worker', self.worker_dir,
                    f'127.0.0.1:{m1.pb_port}', WORKER_NAME, WORKER_PASSWORD])
        self.check([BUILDBOT_WORKER, 'start', self.worker_dir],
                   log=os.path.join(self.worker_dir, 'twistd.log'))

        def worker_connected():
            workers = m1.get(f'workers?name={WORKER_NAME}')['workers']
            return workers and workers[0]['connected_to']
        self.wait_until('the worker to connect to master 1', worker_connected,
                        WORKER_TIMEOUT, self.logs)

        # force builds through master 1's REST API
        brids = []
        for i in range(BUILDS):
            reply = m1.rpc('forceschedulers/force', 'force',
                           {'builderid': None, 'reason': f'e2e build {i}', 'owner': 'e2e'})
            self.assertNotIn('error', reply)
            _bsid, brids_by_builder = reply['result']
            brids.extend(brids_by_builder.values())
        self.assertEqual(len(brids), BUILDS)
        self.while_builds_run()

        def all_complete():
            requests = m1.get('buildrequests')['buildrequests']
            done = [r for r in requests if r['buildrequestid'] in brids and r['complete']]
            return len(done) == BUILDS
        self.wait_until(f'{BUILDS} builds to finish', all_complete, BUILDS_TIMEOUT,
                        lambda: json.dumps(m1.get('builds'), indent=1) + self.logs())

        # every build succeeded; master 2 sees them too (one database)
        for m in self.masters:
            builds = m.get('builds')['builds']
            self.assertEqual(len(builds), BUILDS, m.name)
            self.assertEqual(sorted(b['buildrequestid'] for b in builds), sorted(brids))
            self.assertEqual([b['results'] for b in builds], [0] * BUILDS,
                             f"{m.name}: {builds}")
            self.assertTrue(all(b['complete'] for b in builds))
        builds = m1.get('builds')['builds']
        self.assertEqual({b['masterid'] for b in builds},
                         {m1.get('masters?name__contains=master1')['masters'][0]['masterid']})
        buildids = [b['buildid'] for b in builds]

        # both masters delivered the last messages of every build
        last = {('builds', str(b), 'finished') for b in buildids}
        last |= {('buildrequests', str(r), 'complete') for r in brids}

        def delivered_all():
            return all(last <= {k for k, _ in read_deliveries(m.deliveries)}
                       for m in self.masters)
        self.wait_until("both masters to deliver every build's last messages",
                        delivered_all, DELIVERY_TIMEOUT)

        # stop everything, in order
        self.check([BUILDBOT_WORKER, 'stop', self.worker_dir])
        for m in self.masters:
            self.check([BUILDBOT, 'stop', m.basedir], what=f'buildbot stop {m.name}',
                       log=m.log)
            self.assertIsNone(pid_alive(m.basedir))

        # the same messages, in the same order, at the same stream positions
        d1, d2 = (read_deliveries(m.deliveries) for m in self.masters)
        for d in (d1, d2):
            positions = [pos for _, pos in d]
            self.assertEqual(positions, sorted(set(positions)),
                             "positions delivered out of order or twice")
        at2 = dict((pos, key) for key, pos in d2)
        common = [(key, pos) for key, pos in d1 if pos in at2]
        self.assertGreater(len(common), 0)
        for key, pos in common:
            self.assertEqual(key, at2[pos], f"stream position {pos}")
        b1, b2 = build_messages(d1), build_messages(d2)
        self.assertEqual(b1, b2)
        # 5 builds of 2 steps (+ worker preparation) produce far more than this
        self.assertGreater(len(b1), BUILDS * 10)
        for kind in ('builds', 'steps', 'buildrequests'):
            self.assertTrue(any(key[0] == kind for key, _ in b1), kind)

        # nothing went wrong in the masters' or the routers' logs (nothing
        # filtered out)
        for r in self.routers:
            r.stop()
        for name, path in [(m.name, m.log) for m in self.masters] + [
                (f'router {i}', p) for i, r in enumerate(self.routers)
                for p in (r.log_path, r.console_path) if os.path.exists(p)]:
            with open(path, errors='replace') as f:
                text = f.read()
            at = text.find('Traceback')
            self.assertEqual(at, -1, f"{name} {path}:\n{text[max(0, at - 2000):at + 12000]}")


class HACluster(Cluster):
    """The same cluster with two routers on one PostgreSQL journal (the
    cluster's own server, a database of its own): the leader's router is
    killed with SIGKILL while the builds run; every build succeeds."""

    def start_routers(self):
        from tests.support.pgutil import fresh_database
        journal = fresh_database(self)
        routers = [Router(cbdir=os.path.join(self.tmp, f'router{i}'),
                          extra_args=['--journal', journal]) for i in (1, 2)]
        for r in routers:
            self.addCleanup(r.stop)
        return Router.start_together(routers)

    def leader(self):
        """The router whose sequencer leads (it says so in its log)."""
        def leading():
            says = [r for r in self.routers if r.running and
                    'sequencer leads realm' in open(r.log_path, errors='replace').read()]
            return says[0] if len(says) == 1 else None
        return self.wait_until('a router to lead', leading, 30)

    def while_builds_run(self):
        leader = self.leader()
        leader.kill()
        print(f"killed the leading router {leader.url}")
        self.routers = [r for r in self.routers if r is not leader]
