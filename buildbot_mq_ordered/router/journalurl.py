"""What ``--journal`` names: a SQLite file or a PostgreSQL database. Pure:
parsing and showing URLs, never connecting.

A PostgreSQL password may be in the URL, in PGPASSWORD or in a password
file (PGPASSFILE, libpq's ~/.pgpass): libpq reads the last two itself. It
never appears in a log line or a file this project writes (``masked``,
``without_password``).
"""

from urllib.parse import unquote
from urllib.parse import urlsplit
from urllib.parse import urlunsplit

SQLITE = 'sqlite:///'
POSTGRESQL = ('postgresql://', 'postgres://')


def is_postgresql(location):
    return location.startswith(POSTGRESQL)


def _netloc(parts, password):
    user = parts.username or ''
    host = parts.hostname or ''
    if ':' in host:
        host = f'[{host}]'
    if parts.port:
        host += f':{parts.port}'
    if password is not None:
        user += f':{password}'
    return f'{user}@{host}' if user else host


def without_password(url):
    """(the URL without its password, the password or None)."""
    parts = urlsplit(url)
    if parts.password is None:
        return url, None
    return (urlunsplit(parts._replace(netloc=_netloc(parts, None))),
            unquote(parts.password))


def masked(url):
    """The URL to show: its password (if any) as ***."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    return urlunsplit(parts._replace(netloc=_netloc(parts, '***')))


def host_port(url):
    """'host:port' the URL connects to (libpq's defaults when absent)."""
    parts = urlsplit(url)
    return f"{parts.hostname or 'localhost'}:{parts.port or 5432}"


def check_postgresql(url):
    """None, or why the URL is not postgresql://[USER[:PASSWORD]@]HOST[:PORT]/DB."""
    try:
        parts = urlsplit(url)
        parts.port
    except ValueError as e:
        return str(e)
    if not parts.hostname or not parts.path.strip('/'):
        return "it needs a host and a database: postgresql://USER@HOST[:PORT]/DB"
    return None
