"""The skeleton the ``demo`` and ``bench`` commands share: a temporary
directory, SIGTERM and SIGHUP interrupting like Ctrl-C, cleanup that always
runs, an exit status that says how it ended."""

import shutil
import signal
import sys
import tempfile


def require_crossbar(command):
    """Exit with a clear message when this machine cannot run a router."""
    import importlib.util
    if importlib.util.find_spec('crossbar') is None:
        raise SystemExit(f"{command} starts a router, which needs Crossbar on this "
                         "machine: pip install 'buildbot-mq-ordered[router]'")


class Interrupted(KeyboardInterrupt):
    """SIGINT, SIGTERM or SIGHUP while a driver runs (see ``signals_interrupt``)."""

    def __init__(self, signum):
        super().__init__(signum)
        self.signum = signum


def signals_interrupt():
    """Make SIGTERM and SIGHUP raise ``Interrupted`` like Ctrl-C does, so a
    driver's ``finally`` stops what it started. Returns a restore function."""
    def handler(signum, frame):
        raise Interrupted(signum)
    old = {}
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        try:
            old[sig] = signal.signal(sig, handler)
        except (ValueError, OSError):  # not the main thread
            pass

    def restore():
        for sig, h in old.items():
            signal.signal(sig, h)
    return restore


def say(text):
    print(text, flush=True)


def run_guarded(prefix, body, cleanup, what, keep=False):
    """The skeleton of a driver (demo, bench): ``body(tmp)`` runs in a fresh
    temporary directory with SIGTERM/SIGHUP interrupting like Ctrl-C;
    ``cleanup()`` always runs afterwards. Returns the exit status: body's,
    128 + signal when interrupted, 1 on a RuntimeError. The directory is
    kept (and named) when asked or when something failed.
    ``what()`` says what an interruption stops."""
    restore = signals_interrupt()
    tmp = tempfile.mkdtemp(prefix=prefix)
    status = 1
    try:
        status = body(tmp)
        return status
    except Interrupted as e:
        print(file=sys.stderr)
        say(f"interrupted (signal {e.signum}): stopping {what()}")
        status = 128 + e.signum
        return status
    except KeyboardInterrupt:
        print(file=sys.stderr)
        say(f"interrupted: stopping {what()}")
        status = 130
        return status
    except RuntimeError as e:
        say(f"error: {e}")
        return 1
    finally:
        try:
            cleanup()
        finally:
            restore()
            if keep or status not in (0, 130, 128 + signal.SIGTERM, 128 + signal.SIGHUP):
                say(f"logs and results kept in {tmp}")
            else:
                shutil.rmtree(tmp, ignore_errors=True)
