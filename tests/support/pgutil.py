"""PostgreSQL for tests: a database of its own per test, dropped after.

``BMO_TEST_PG_URL`` (default: what ``bash tests/services.sh`` sets up) is
the server; it must be there (CI runs services.sh): no test is skipped
for want of it.
"""

import os
import uuid

PG_URL = os.environ.get('BMO_TEST_PG_URL',
                        'postgresql://postgres:postgres@127.0.0.1:5432/postgres')


def admin():
    import psycopg
    return psycopg.connect(PG_URL, autocommit=True, connect_timeout=10)


def fresh_database(testcase):
    """The URL of a new empty database, dropped when the test ends."""
    name = 'bmo_test_' + uuid.uuid4().hex[:12]
    with admin() as db:
        db.execute(f'CREATE DATABASE "{name}"')

    def drop():
        with admin() as db:
            db.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    testcase.addCleanup(drop)
    return PG_URL.rsplit('/', 1)[0] + '/' + name


def journal_rows(url, sql):
    import psycopg
    with psycopg.connect(url) as db:
        return db.execute(sql).fetchall()
