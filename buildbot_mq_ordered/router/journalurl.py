"""What ``--journal`` names: a SQLite file or a PostgreSQL database. Pure:
parsing and showing URLs, never connecting.

A PostgreSQL URL is libpq's: ``postgresql://[USER[:PASSWORD]@]HOST[:PORT]
[,HOST2[:PORT2]...]/DB[?PARAM=VALUE&...]``. Several hosts are libpq's way
to follow a failover: with ``target_session_attrs=read-write`` each
connection is made to whichever of them is the primary now. (The standard
library's ``urlsplit`` cannot read a host list: its ``port`` fails on one.)

A PostgreSQL password may be in the URL (after the user, or as a
``password`` parameter), in PGPASSWORD or in a password file (PGPASSFILE,
libpq's ~/.pgpass): libpq reads the last two itself. It never appears in
a log line or a file this project writes (``masked``,
``without_password``), whether the URL is well formed or not.
"""

from urllib.parse import unquote

SQLITE = 'sqlite:///'
POSTGRESQL = ('postgresql://', 'postgres://')
SHAPE = "postgresql://USER@HOST[:PORT][,HOST2[:PORT2]...]/DB[?PARAM=VALUE&...]"
# a password given as a parameter of the query
_PASSWORD = 'password='
_DEFAULT_PORT = '5432'


def is_postgresql(location):
    return location.startswith(POSTGRESQL)


def _split(url):
    """(scheme, user info or None, host list, the rest: /DB?...) by text
    alone: it never fails, so a malformed URL is masked too."""
    scheme, sep, rest = url.partition('://')
    end = min((i for i in (rest.find('/'), rest.find('?')) if i >= 0), default=len(rest))
    netloc, tail = rest[:end], rest[end:]
    userinfo, at, hosts = netloc.rpartition('@')
    return scheme + sep, (userinfo if at else None), hosts, tail


def _join(scheme, userinfo, hosts, tail):
    return scheme + ('' if userinfo is None else userinfo + '@') + hosts + tail


def _params(tail):
    """(the path, the query's parameters as written)."""
    path, q, query = tail.partition('?')
    return path, (query.split('&') if q else [])


def _with_params(path, params):
    return path + ('?' + '&'.join(params) if params else '')


def without_password(url):
    """(the URL without its password, the password or None)."""
    scheme, userinfo, hosts, tail = _split(url)
    password = None
    if userinfo is not None and ':' in userinfo:
        userinfo, _, given = userinfo.partition(':')
        password = unquote(given)
    path, params = _params(tail)
    for param in params:
        if param.startswith(_PASSWORD):
            password = unquote(param[len(_PASSWORD):])     # libpq: the last wins
    kept = [param for param in params if not param.startswith(_PASSWORD)]
    return _join(scheme, userinfo, hosts, _with_params(path, kept)), password


def masked(url):
    """The URL to show: its password (if any) as ***."""
    scheme, userinfo, hosts, tail = _split(url)
    if userinfo is not None and ':' in userinfo:
        userinfo = userinfo.partition(':')[0] + ':***'
    path, params = _params(tail)
    params = [_PASSWORD + '***' if p.startswith(_PASSWORD) else p for p in params]
    return _join(scheme, userinfo, hosts, _with_params(path, params))


def hosts(url):
    """[(host, port), ...] the URL names, in order, ports as text (libpq's
    default when absent); ValueError naming the bad part."""
    listed = _split(url)[2]
    if not listed:
        return []
    out = []
    items = listed.split(',')
    for i, item in enumerate(items, 1):
        which = f"host {i} of {len(items)}" if len(items) > 1 else "the host"
        out.append(_host(item, which))
    return out


def _host(item, which):
    if item.startswith('['):
        address, bracket, after = item[1:].partition(']')
        if not bracket or not address:
            raise ValueError(f"{which} ({item!r}): an IPv6 address needs [ADDRESS]")
        host, port = f'[{address}]', after
        if port and not port.startswith(':'):
            raise ValueError(f"{which} ({item!r}): only :PORT may follow [ADDRESS]")
        port = port[1:]
    else:
        host, _, port = item.partition(':')
    if not host:
        raise ValueError(f"{which} is empty" if not item else
                         f"{which} ({item!r}) has no name before its port")
    if port and not (port.isdigit() and 0 < int(port) < 65536):
        raise ValueError(f"{which} ({unquote(host)}) has port {port!r}: a port is a "
                         "number from 1 to 65535")
    return unquote(host), port or _DEFAULT_PORT


def host_port(url):
    """'host:port[,host:port...]' the URL connects to (libpq's defaults when
    absent), for messages."""
    try:
        listed = hosts(url)
    except ValueError:
        return _split(url)[2]
    return ','.join(f'{h}:{p}' for h, p in listed) or f'localhost:{_DEFAULT_PORT}'


def check_postgresql(url):
    """None, or why the URL is not one of SHAPE (naming the bad part)."""
    try:
        listed = hosts(url)
    except ValueError as e:
        return str(e)
    database = _split(url)[3].partition('?')[0].strip('/')
    if not listed or not database:
        return f"it needs a host and a database: {SHAPE}"
    return None
