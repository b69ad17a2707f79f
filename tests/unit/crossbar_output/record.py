"""Record Crossbar's output for tests/unit/test_router_start.py: run by hand
(it starts routers; not a test) when Crossbar or the sequencer's lines change:

    PYTHONPATH=. python tests/unit/crossbar_output/record.py [POSTGRESQL_URL]

Each file is what a real start wrote to router.log at ``--loglevel info``.
Runs that the router command's own checks would refuse before Crossbar
starts (port in use, node directory in use, a zombie in node.pid) run
Crossbar directly, as the router command would have.
"""

import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import uuid

from buildbot_mq_ordered.load.processes import free_port
from buildbot_mq_ordered.router import nodedir
from buildbot_mq_ordered.router.launcher import crossbar_argv
from buildbot_mq_ordered.router.launcher import crossbar_env
from buildbot_mq_ordered.router.nodeconfig import node_config

HERE = os.path.dirname(os.path.abspath(__file__))
CLI = [sys.executable, '-m', 'buildbot_mq_ordered.cli', 'router', '--loglevel', 'info']
PG = sys.argv[1] if len(sys.argv) > 1 else \
    'postgresql://postgres:postgres@127.0.0.1:5432/postgres'
TIMEOUT = 60


def command(cbdir, *args):
    return subprocess.Popen(CLI + ['--cbdir', cbdir, '--port', str(free_port())] +
                            list(args), stdout=subprocess.PIPE, stderr=subprocess.STDOUT)


def wait_line(proc, text):
    deadline = time.monotonic() + TIMEOUT
    while time.monotonic() < deadline:
        line = proc.stdout.readline().decode()
        print('  ', line.rstrip())
        if text in line:
            return
    raise SystemExit(f"no {text!r}")


def wait_log(cbdir, text):
    deadline = time.monotonic() + TIMEOUT
    while time.monotonic() < deadline:
        with open(os.path.join(cbdir, 'router.log'), errors='replace') as f:
            if text in f.read():
                return
        time.sleep(0.2)
    raise SystemExit(f"no {text!r} in {cbdir}/router.log")


def stop(proc):
    proc.terminate()
    print('  ', proc.communicate(timeout=TIMEOUT)[0].decode().rstrip())


def crossbar(cbdir, port, journal=None):
    """Crossbar alone, as the router command runs it; its whole output."""
    journal = journal or os.path.join(cbdir, 'sequencer.sqlite')
    path = nodedir.write_config(cbdir, node_config(port, cbdir=cbdir, journal=journal))
    return subprocess.run(crossbar_argv(cbdir, path, 'info'), env=crossbar_env([], journal),
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          timeout=TIMEOUT).stdout


def keep(name, text):
    with open(os.path.join(HERE, name), 'wb') as f:
        f.write(text)
    print(f"{name}: {len(text.splitlines())} lines")


def log_of(cbdir):
    with open(os.path.join(cbdir, 'router.log'), 'rb') as f:
        return f.read()


def clean(tmp):
    cbdir = os.path.join(tmp, 'clean')
    proc = command(cbdir)
    wait_line(proc, 'ready at')
    stop(proc)
    keep('clean.log', log_of(cbdir))


def port_in_use(tmp):
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        s.listen(1)
        keep('port_in_use.log', crossbar(os.path.join(tmp, 'port'), s.getsockname()[1]))


def node_dir_in_use(tmp):
    cbdir = os.path.join(tmp, 'shared')
    first = command(cbdir)
    wait_line(first, 'ready at')
    try:
        keep('node_dir_in_use.log', crossbar(cbdir, free_port()))
    finally:
        stop(first)


def zombie_in_node_pid(tmp):
    cbdir = os.path.join(tmp, 'zombie')
    os.makedirs(cbdir)
    child = subprocess.Popen(['true'])
    while open(f'/proc/{child.pid}/stat').read().rsplit(')', 1)[1].split()[0] != 'Z':
        time.sleep(0.01)
    with open(os.path.join(cbdir, 'node.pid'), 'w') as f:
        json.dump({'pid': child.pid}, f)
    keep('zombie_in_node_pid.log', crossbar(cbdir, free_port()))
    child.wait()


def sequencer_fails(tmp):
    cbdir = os.path.join(tmp, 'fails')
    os.makedirs(os.path.join(cbdir, 'sequencer.sqlite'))   # a directory
    proc = command(cbdir)
    print('  ', proc.communicate(timeout=TIMEOUT)[0].decode().rstrip())
    keep('sequencer_fails.log', log_of(cbdir))


def standby(tmp):
    """Two routers on one PostgreSQL journal: the second is a candidate,
    then leads when the first stops."""
    import psycopg
    name = 'bmo_record_' + uuid.uuid4().hex[:12]
    with psycopg.connect(PG, autocommit=True) as db:
        db.execute(f'CREATE DATABASE "{name}"')
    url = PG.rsplit('/', 1)[0] + '/' + name
    first = command(os.path.join(tmp, 'lead'), '--journal', url)
    try:
        wait_line(first, 'ready at')
        cbdir = os.path.join(tmp, 'standby')
        second = command(cbdir, '--journal', url)
        wait_line(second, 'ready at')
        stop(first)
        wait_log(cbdir, 'sequencer leads realm')
        stop(second)
        keep('standby.log', log_of(cbdir))
    finally:
        first.kill()
        with psycopg.connect(PG, autocommit=True) as db:
            db.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def main():
    tmp = tempfile.mkdtemp(prefix='bmo-record-')
    try:
        for record in (clean, port_in_use, node_dir_in_use, zombie_in_node_pid,
                       sequencer_fails, standby):
            print(record.__name__)
            record(tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == '__main__':
    main()
