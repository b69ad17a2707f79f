#!/usr/bin/env bash
# Starts the services the test suite needs that a Python install cannot
# bring: a PostgreSQL server on 127.0.0.1:5432 where user `postgres` logs in
# over TCP with password `postgres` (tests/integration/test_cluster_e2e.py: two masters
# share one database; BMO_TEST_PG_URL overrides where the tests look).
#
# Debian/Ubuntu, as root (as CI runs). Idempotent: when the server already
# accepts that login it returns at once; otherwise it installs the Debian
# package `postgresql` if it is missing, creates and starts a cluster, and
# sets the password.
set -euo pipefail

PG_USER=postgres
PG_PASSWORD=postgres
PG_HOST=127.0.0.1
START_TIMEOUT=60   # seconds to wait for a started server to accept connections

can_login() {
    command -v psql >/dev/null 2>&1 &&
        PGPASSWORD=$PG_PASSWORD PGCONNECT_TIMEOUT=3 \
            psql -h "$PG_HOST" -p "$1" -U "$PG_USER" -d postgres -Atqc 'select 1' \
            >/dev/null 2>&1
}

# fast path: already set up
if can_login 5432; then
    echo "services.sh: PostgreSQL ready at postgresql://$PG_USER:$PG_PASSWORD@$PG_HOST:5432/postgres"
    exit 0
fi

if [ "$(id -u)" != 0 ]; then
    echo "services.sh: PostgreSQL is not ready on $PG_HOST:5432 and setting it up needs root" >&2
    exit 1
fi

# install
if ! command -v pg_ctlcluster >/dev/null 2>&1 || ! command -v pg_lsclusters >/dev/null 2>&1; then
    echo "services.sh: installing PostgreSQL (apt-get install postgresql)"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q
    apt-get install -y -q postgresql
fi

# a cluster: the package creates one (`main`) unless told not to
if [ -z "$(pg_lsclusters -h 2>/dev/null)" ]; then
    version=$(ls /usr/lib/postgresql | sort -V | tail -n 1)
    echo "services.sh: creating PostgreSQL cluster $version/main"
    pg_createcluster "$version" main
fi

# the cluster on port 5432 if there is one, else the first
cluster=$(pg_lsclusters -h | awk '$3 == 5432' | head -n 1)
[ -n "$cluster" ] || cluster=$(pg_lsclusters -h | head -n 1)
read -r version name port status _ <<<"$cluster"

# start
if [ "${status%%,*}" != online ]; then
    echo "services.sh: starting PostgreSQL cluster $version/$name on port $port"
    pg_ctlcluster "$version" "$name" start
fi
deadline=$((SECONDS + START_TIMEOUT))
until pg_isready -q -h "$PG_HOST" -p "$port"; do
    if [ "$SECONDS" -ge "$deadline" ]; then
        echo "services.sh: PostgreSQL $version/$name did not accept connections on" \
             "$PG_HOST:$port within ${START_TIMEOUT}s" >&2
        exit 1
    fi
    sleep 0.5
done

# the password (Debian's pg_hba.conf asks for one on 127.0.0.1)
if ! can_login "$port"; then
    echo "services.sh: setting the password of PostgreSQL user $PG_USER"
    (cd / && runuser -u postgres -- psql -p "$port" -q -v ON_ERROR_STOP=1 \
        -c "ALTER USER $PG_USER PASSWORD '$PG_PASSWORD'")
fi
if ! can_login "$port"; then
    echo "services.sh: cannot log in as $PG_USER on $PG_HOST:$port with the password;" \
         "check pg_hba.conf of cluster $version/$name" >&2
    exit 1
fi

url="postgresql://$PG_USER:$PG_PASSWORD@$PG_HOST:$port/postgres"
echo "services.sh: PostgreSQL ready at $url"
if [ "$port" != 5432 ]; then
    echo "services.sh: not the default port: export BMO_TEST_PG_URL=$url"
fi
