"""A router's node directory (``--cbdir``): who holds it, and the files
the router command writes there.

Crossbar keeps its controller's PID in ``node.pid`` and refuses to start
while that names a live process whose command line says crossbar. It
removes a ``node.pid`` that names no process, but one that names a zombie
makes it raise ``psutil.ZombieProcess`` and exit (``_check_is_running`` in
crossbar/node/main.py). A controller killed and not yet reaped is that
zombie, and on a host whose init reaps no orphans it stays one. So the
router command decides first: a live Crossbar holds the directory; a
process that is gone, a zombie, or another program left a stale
``node.pid``, which is removed before Crossbar starts.
"""

import json
import os
from typing import NamedTuple

PID_FILE = 'node.pid'
CONFIG_FILE = 'config.json'
LOG_FILE = 'router.log'


class Holder(NamedTuple):
    """The process a node directory's node.pid names."""
    pid: int
    live: bool        # a running Crossbar; else the node.pid is stale


def is_live_crossbar(status, cmdline):
    """Whether a process (psutil's status, None when there is none, and its
    command line, None when unreadable) is a running Crossbar controller."""
    if status is None or status == 'zombie':
        return False
    if cmdline is None:
        return True       # cannot tell: taken as a router
    return any('crossbar' in part for part in cmdline)


def holder(cbdir):
    """The Holder of cbdir's node.pid, or None without a readable one."""
    pid = _named_pid(cbdir)
    if pid is None:
        return None
    if pid == os.getpid():
        # our own PID: node.pid outlived a container restart
        return Holder(pid, live=False)
    return Holder(pid, is_live_crossbar(*_process(pid)))


def clear_stale(cbdir, stale):
    """Remove node.pid if it still names the stale holder."""
    if _named_pid(cbdir) == stale.pid:
        try:
            os.remove(os.path.join(cbdir, PID_FILE))
        except FileNotFoundError:
            pass


def write_config(cbdir, config):
    """Write Crossbar's node configuration; its path."""
    os.makedirs(cbdir, exist_ok=True)
    path = os.path.join(cbdir, CONFIG_FILE)
    with open(path, 'w') as f:
        json.dump(config, f, indent=2)
    return path


def _named_pid(cbdir):
    try:
        with open(os.path.join(cbdir, PID_FILE)) as f:
            return int(json.load(f)['pid'])
    except (OSError, ValueError, KeyError, TypeError):
        return None    # none, or corrupt: Crossbar removes a corrupt one itself


def _process(pid):
    """(psutil's status, command line) of a process; (None, []) if none."""
    import psutil     # Crossbar's own dependency: wherever the router runs
    try:
        process = psutil.Process(pid)
        status = process.status()
        if status == psutil.STATUS_ZOMBIE:
            return status, []
        return status, process.cmdline()
    except psutil.NoSuchProcess:      # ZombieProcess too: it is gone
        return None, []
    except psutil.AccessDenied:
        return 'unknown', None
