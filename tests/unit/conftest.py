"""The unit lane starts no process and opens no socket: either is an error
here, so a test that needs one belongs in tests/integration/."""

import socket
import subprocess

import pytest


def _refused(what):
    def refuse(*args, **kwargs):
        raise AssertionError(f"a unit test may not {what}: move it to tests/integration/")
    return refuse


@pytest.fixture(autouse=True)
def no_processes_no_sockets(monkeypatch):
    for name in ('connect', 'connect_ex', 'bind'):
        monkeypatch.setattr(socket.socket, name, _refused(f"{name} a socket"))
    monkeypatch.setattr(socket, 'create_connection', _refused("open a connection"))
    monkeypatch.setattr(subprocess.Popen, '__init__', _refused("start a process"))
