"""A PostgreSQL primary and its streaming replica, of one test's own: two
throwaway clusters made with Debian's tools (``pg_createcluster``,
``pg_basebackup -R``) on free loopback ports, dropped at cleanup.

The replica streams through a ``CuttableProxy`` (``link``), so a test can
hold replication back (``hold_back``: the replica falls behind while the
primary commits on, as an asynchronous standby does) and lose the primary
before the replica got the rest (``lose_primary``). ``synchronous=True``
makes the replica a synchronous standby (``synchronous_standby_names =
'*'``, ``synchronous_commit = on``): no commit returns before the replica
has it.

Authentication as on the main cluster (Debian's pg_hba: a password over
TCP on 127.0.0.1, user ``postgres`` password ``postgres``), so the routers'
URLs carry a password as an operator's do. Blocking calls throughout: run
them from a thread. Every wait is bounded."""

import os
import subprocess
import time
import uuid

from buildbot_mq_ordered.load.processes import free_port
from tests.support.tcpproxy import CuttableProxy

USER = 'postgres'
PASSWORD = 'postgres'
DATABASE = 'journal'
READY_TIMEOUT = 30        # a started or promoted cluster accepts connections
STREAM_TIMEOUT = 30       # the replica streams (synchronously, if asked)
CATCH_UP_TIMEOUT = 30     # the replica replayed what the primary has
COMMAND_TIMEOUT = 60      # one cluster command (initdb, base backup, promote)
POLL = 0.1
# clusters of this module are named PREFIX<pid of the test process>_<hex>
PREFIX = 'bmot'


def pg_version():
    """The newest PostgreSQL installed (Debian's /usr/lib/postgresql/N)."""
    return sorted(os.listdir('/usr/lib/postgresql'), key=int)[-1]


def run(*argv, user=None):
    """A cluster command, bounded; its output in the error if it fails."""
    if user:
        argv = ('runuser', '-u', user, '--') + argv
    done = subprocess.run(argv, cwd='/', capture_output=True, text=True,
                          timeout=COMMAND_TIMEOUT)
    if done.returncode:
        raise RuntimeError(f"{' '.join(argv)} failed ({done.returncode}):\n"
                           f"{done.stdout}{done.stderr}")
    return done.stdout


def query(port, sql, database='postgres', autocommit=True):
    """All rows of one statement on the cluster at this port."""
    import psycopg
    with psycopg.connect(host='127.0.0.1', port=port, user=USER, password=PASSWORD,
                         dbname=database, connect_timeout=5, autocommit=autocommit) as db:
        cur = db.execute(sql)
        return cur.fetchall() if cur.description else []


def until(condition, timeout, what):
    """Poll condition() until true (its value), or fail naming what."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout}s: {what}")
        time.sleep(POLL)


def accepts(port):
    return subprocess.run(['pg_isready', '-q', '-h', '127.0.0.1', '-p', str(port), '-t', '1'],
                          timeout=10).returncode == 0


def drop_stale_clusters():
    """Clusters this module made in a test process that is gone (killed
    before its cleanup ran): dropped, so they do not pile up."""
    for line in run('pg_lsclusters', '-h').splitlines():
        version, name = line.split()[:2]
        pid = name[len(PREFIX):].split('_')[0] if name.startswith(PREFIX) else ''
        if pid.isdigit() and not os.path.exists(f'/proc/{pid}'):
            subprocess.run(['pg_dropcluster', '--stop', version, name], cwd='/',
                           capture_output=True, timeout=COMMAND_TIMEOUT)


class PgPair:
    """A primary (``primary_port``) and its replica (``replica_port``);
    ``start()`` makes both and the database ``DATABASE`` on them."""

    def __init__(self, testcase, synchronous=False):
        self.version = pg_version()
        tag = f'{PREFIX}{os.getpid()}_{uuid.uuid4().hex[:8]}'
        self.primary, self.replica = tag + '_p', tag + '_r'
        self.primary_port, self.replica_port = free_port(), free_port()
        self.synchronous = synchronous
        self.made = []
        self.link = CuttableProxy(self.primary_port)
        testcase.addCleanup(self.drop)

    # -- URLs --------------------------------------------------------------
    def url(self, *ports, **params):
        """A libpq URL of the journal's database on these hosts (all of
        the pair's, primary first, by default)."""
        hosts = ','.join(f'127.0.0.1:{p}' for p in (ports or self.ports))
        query_ = '&'.join(f'{k}={v}' for k, v in sorted(params.items()))
        return (f'postgresql://{USER}:{PASSWORD}@{hosts}/{DATABASE}'
                + (f'?{query_}' if query_ else ''))

    def failover_url(self):
        """Both hosts, whichever is the primary now (libpq's way)."""
        return self.url(target_session_attrs='read-write', connect_timeout=3)

    @property
    def ports(self):
        return (self.primary_port, self.replica_port)

    # -- making and dropping -----------------------------------------------
    def start(self):
        drop_stale_clusters()
        # the replica's cluster is made beside the primary's (its data are
        # replaced by the base backup; its configuration stays)
        making = self._create(self.replica, self.replica_port)
        self._created(self._create(self.primary, self.primary_port))
        run('pg_ctlcluster', self.version, self.primary, 'start')
        until(lambda: accepts(self.primary_port), READY_TIMEOUT, "the primary accepts")
        run('psql', '-p', str(self.primary_port), '-qc',
            f"ALTER USER {USER} PASSWORD '{PASSWORD}'", user='postgres')
        query(self.primary_port, f'CREATE DATABASE "{DATABASE}"')
        self._created(making)
        data = f'/var/lib/postgresql/{self.version}/{self.replica}'
        run('find', data, '-mindepth', '1', '-delete')
        # through the link: -R writes the link's port into primary_conninfo
        run('pg_basebackup', '-d', f'host=127.0.0.1 port={self.link.port} user={USER} '
            f'password={PASSWORD}', '-D', data, '-R', '-X', 'stream', '-c', 'fast', '--no-sync',
            user='postgres')
        run('pg_ctlcluster', self.version, self.replica, 'start')
        until(lambda: accepts(self.replica_port), READY_TIMEOUT, "the replica accepts")
        if self.synchronous:
            # on the primary only, after the base backup: a promoted replica
            # must not wait for a standby of its own
            query(self.primary_port, "ALTER SYSTEM SET synchronous_standby_names = '*'")
            query(self.primary_port, "SELECT pg_reload_conf()")
        until(self._streaming, STREAM_TIMEOUT, "the replica streams"
              + (" synchronously" if self.synchronous else ""))
        return self

    def _create(self, name, port):
        """pg_createcluster, started (``_created`` waits for it)."""
        self.made.append(name)
        # throwaway clusters: no fsync of the files initdb makes; the
        # servers themselves run as configured
        return subprocess.Popen(
            ['pg_createcluster', self.version, name, '--port', str(port),
             '--start-conf', 'manual', '--', '--no-sync'],
            cwd='/', stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)

    @staticmethod
    def _created(making):
        out, _ = making.communicate(timeout=COMMAND_TIMEOUT)
        if making.returncode:
            raise RuntimeError(f"{' '.join(making.args)} failed ({making.returncode}):\n{out}")

    def _streaming(self):
        want = 'sync' if self.synchronous else 'async'
        rows = query(self.primary_port, "SELECT state, sync_state FROM pg_stat_replication")
        return rows == [('streaming', want)]

    def drop(self):
        self.link.close()
        for name in self.made:
            subprocess.run(['pg_dropcluster', '--stop', self.version, name], cwd='/',
                           capture_output=True, timeout=COMMAND_TIMEOUT)

    # -- the fault -----------------------------------------------------------
    def hold_back(self):
        """Replication stops reaching the replica; the primary goes on."""
        self.link.hang()

    def lose_primary(self):
        """The primary is gone at once (``stop -m immediate``), then the
        link is cut: what it held never reaches the replica."""
        run('pg_ctlcluster', self.version, self.primary, 'stop', '-m', 'immediate')
        self.link.cut()

    def promote(self):
        run('pg_ctlcluster', self.version, self.replica, 'promote')
        until(lambda: query(self.replica_port, "SELECT NOT pg_is_in_recovery()")[0][0],
              READY_TIMEOUT, "the promoted replica takes writes")

    # -- what each side has --------------------------------------------------
    def wait_caught_up(self):
        """The replica replayed everything the primary wrote so far."""
        (lsn,), = query(self.primary_port, "SELECT pg_current_wal_lsn()")
        until(lambda: query(self.replica_port,
                            f"SELECT pg_last_wal_replay_lsn() >= '{lsn}'::pg_lsn")[0][0],
              CATCH_UP_TIMEOUT, f"the replica replays up to {lsn}")

    def head(self, port, table='entries', column='pos'):
        """The highest ``column`` of ``table`` in the journal on that
        cluster (0 if none); a standby answers too (hot standby)."""
        rows = query(port, f"SELECT coalesce(max({column}), 0) FROM {table}", DATABASE)
        return rows[0][0]


class _Holder:
    """Cleanups of a pair made outside a test (``main``)."""

    def __init__(self):
        self.cleanups = []

    def addCleanup(self, f, *args):
        self.cleanups.append((f, args))

    def run_cleanups(self):
        for f, args in reversed(self.cleanups):
            f(*args)


def main(argv=None):
    """``python -m tests.support.pgpair [--synchronous]``: a pair for a
    bench, its URLs printed; dropped when stdin ends (Ctrl-D) or on Ctrl-C."""
    import argparse
    import sys
    p = argparse.ArgumentParser(description=main.__doc__)
    p.add_argument('--synchronous', action='store_true')
    args = p.parse_args(argv)
    holder = _Holder()
    try:
        pair = PgPair(holder, synchronous=args.synchronous).start()
        print(f"primary {pair.url(pair.primary_port)}\n"
              f"both    {pair.failover_url()}", flush=True)
        sys.stdin.read()
    except KeyboardInterrupt:
        pass
    finally:
        holder.run_cleanups()


if __name__ == '__main__':
    main()
