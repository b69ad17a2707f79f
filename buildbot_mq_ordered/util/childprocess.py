"""How this package's commands start child processes."""

import signal


def die_with_parent():
    """In the child, before exec: SIGTERM when the parent dies (Linux), so a
    driver killed with SIGKILL leaves no router or node behind."""
    try:
        import ctypes
        libc = ctypes.CDLL(None, use_errno=True)
        PR_SET_PDEATHSIG = 1
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    except Exception:
        pass
