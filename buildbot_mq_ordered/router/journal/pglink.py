"""Connections to the journal's PostgreSQL server that no stall keeps for
ever: each one's limits on the server (statement and lock timeouts, an
open transaction left idle, TCP keepalives and user timeout), and a bound
on every operation, answer included, that the watchdog (watchdog.py)
enforces from outside by shutting the connection's socket down.

The server's limits end what the server runs; the bound ends a wait for an
answer that cannot come (a link that accepts and forwards nothing, whose
keepalives and user timeout a proxy's kernel satisfies). It is the
server's limit plus a second, so a slow statement ends with the
server's own error and the connection is kept.
"""

import contextlib
import os
import socket
import threading
import time
from dataclasses import dataclass

import psycopg
from psycopg.conninfo import conninfo_to_dict

# seconds a sent request may stay unacknowledged by the peer
USER_TIMEOUT = 5
# seconds a transaction left idle lives on the server (every write is one
# statement; only loads and the layout's creation open transactions)
IDLE_IN_TRANSACTION = 3
# the server's keepalives on its side of each connection: a vanished router's
# session ends within seconds, not the two hours of the kernel's default
SERVER_KEEPALIVE = '-c tcp_keepalives_idle=2 -c tcp_keepalives_interval=1 ' \
                   '-c tcp_keepalives_count=3'
ANSWER_MARGIN = 1


@dataclass(frozen=True)
class Limits:
    """One connection's limits, in seconds: how long the server runs one
    statement (``statement_timeout``) and waits for one lock
    (``lock_timeout``); connecting (libpq's least is 2); ``bound``: how
    long one operation may take, answer included, before its link counts
    as hung."""
    role: str
    statement: float
    lock: float
    connect: int = 5

    @property
    def bound(self):
        return self.statement + ANSWER_MARGIN

    def options(self):
        """The server settings, as libpq's ``options``."""
        return (f"-c statement_timeout={int(self.statement * 1000)} "
                f"-c lock_timeout={int(self.lock * 1000)} "
                f"-c idle_in_transaction_session_timeout={IDLE_IN_TRANSACTION * 1000} "
                f"-c tcp_user_timeout={USER_TIMEOUT * 1000} {SERVER_KEEPALIVE}")


# appends hold the lease row for the statement's length: no longer than a lease
WRITER = Limits('writer', statement=3, lock=1)
# one row by its key: the reactor may be waiting
LOOKUPS = Limits('lookups', statement=1, lock=0.5, connect=2)
# a replay of up to a few MiB
READER = Limits('reader', statement=10, lock=1)
# a take-over never queues long behind a statement holding the lease row
LEASE = Limits('lease', statement=1, lock=0.5, connect=2)


class LinkHung(psycopg.OperationalError):
    """An operation outlasted its bound: its connection was aborted."""


def connect(url, limits):
    """A connection in autocommit (transactions are explicit), with
    ``limits`` on the server and keepalives and a user timeout on both sides
    (options given in the URL come after ours, and win; so does its
    connect_timeout). The URL goes to libpq whole: with several hosts and
    ``target_session_attrs=read-write``, each connection - a broken one's
    replacement too - is made to whichever host is the primary then."""
    given = conninfo_to_dict(url)
    return psycopg.connect(
        url, autocommit=True, connect_timeout=given.get('connect_timeout', limits.connect),
        keepalives=1, keepalives_idle=2, keepalives_interval=1, keepalives_count=3,
        tcp_user_timeout=USER_TIMEOUT * 1000, application_name='buildbot-mq-ordered',
        options=' '.join(o for o in (limits.options(), given.get('options')) if o))


class Link:
    """A connection made when first needed and again once broken, whose
    operations are bounded: ``operation()`` marks one under way until its
    end; the watchdog's ``abort_if_overdue`` shuts the socket of one that
    outlasted its bound, which makes the blocked call fail at once."""

    def __init__(self, url, limits, watchdog=None, connect=connect, now=time.monotonic):
        self.url = url
        self.limits = limits
        self._connect = connect
        self._now = now
        self._lock = threading.Lock()    # the watchdog's thread reads what follows
        self._conn = None
        self._sock = None       # a duplicate of the connection's socket: ours to shut
        self._deadline = None   # when the operation under way must have ended
        self._depth = 0
        self._aborted = False
        if watchdog is not None:
            watchdog.watch(self)

    def get(self):
        """The connection, made again if it broke (no operation is marked)."""
        if self._conn is not None and (self._conn.closed or self._aborted):
            self.close()
        if self._conn is None:
            conn = self._connect(self.url, self.limits)
            with self._lock:
                self._conn, self._sock, self._aborted = conn, _duplicate(conn), False
        return self._conn

    @contextlib.contextmanager
    def operation(self, bound=None):
        """The connection, for one bounded operation (nested ones join it)."""
        bound = bound or self.limits.bound
        hung = LinkHung(f"no answer within {bound:g}s on the {self.limits.role} "
                        "connection: aborted it")
        if self._depth:     # inside another: the same connection, or none
            if self._aborted:
                raise hung
            conn = self._conn
        else:
            conn = self.get()
        with self._lock:
            if self._depth == 0:
                self._deadline = self._now() + bound
            self._depth += 1
        try:
            yield conn
        except psycopg.Error as e:
            if self._aborted:
                raise hung from e
            raise
        finally:
            with self._lock:
                self._depth -= 1
                if self._depth == 0:
                    self._deadline = None

    def execute(self, sql, args=()):
        with self.operation() as conn:
            return conn.execute(sql, args)

    @contextlib.contextmanager
    def transaction(self):
        """A transaction, bounded as one operation."""
        with self.operation() as conn, conn.transaction():
            yield conn

    def abort_if_overdue(self):
        """Shut the socket of an operation past its bound (any thread); True
        if it did. The blocked call then fails, and the connection is made
        again next time."""
        with self._lock:
            if self._deadline is None or self._now() < self._deadline or self._aborted:
                return False
            self._aborted = True
            if self._sock is not None:
                _shut(self._sock)
            return True

    def postpone(self, seconds):
        """The operation under way, if any, may take seconds more."""
        with self._lock:
            if self._deadline is not None:
                self._deadline += seconds

    def close(self):
        with self._lock:
            conn, sock, self._conn, self._sock = self._conn, self._sock, None, None
        for thing in (conn, sock):
            if thing is not None:
                with contextlib.suppress(Exception):
                    thing.close()


def _duplicate(conn):
    """A socket object on a duplicate of conn's descriptor: shutting it down
    reaches the connection even after libpq closed its own descriptor, and
    never another socket that took over the number."""
    pgconn = getattr(conn, 'pgconn', None)
    if pgconn is None:
        return None
    return socket.socket(fileno=os.dup(pgconn.socket))


def _shut(sock):
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)
