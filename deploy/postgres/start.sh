#!/usr/bin/env bash
# Start a throw-away PostgreSQL server for the tests on 127.0.0.1:${SAMBUS_POSTGRES_PORT:-55432}.
# Installs Debian's postgresql package when it is missing (as root), makes a cluster in a temporary
# directory, and prints the line to export: SAMBUS_TEST_POSTGRES_URL=postgresql+psycopg://...
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
source "$here/env.sh"

bin="$(pg_bin)"
if [ -z "$bin" ]; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
        echo "postgres: installing Debian's postgresql package" >&2
        apt-get update -qq >&2
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >&2
        bin="$(pg_bin)"
    fi
    if [ -z "$bin" ]; then
        echo "postgres: no PostgreSQL server found; install the postgresql package (as root: apt-get install postgresql)" >&2
        exit 1
    fi
fi

if [ "$(id -u)" = 0 ] && ! id postgres >/dev/null 2>&1; then
    useradd --system --home-dir /var/lib/postgresql --shell /bin/bash postgres
fi

mkdir -p "$BASE"
[ "$(id -u)" = 0 ] && chown postgres "$BASE"

if as_owner "$bin/pg_ctl" -D "$DATA" status >/dev/null 2>&1; then
    echo "postgres: already running on 127.0.0.1:$PORT" >&2
else
    if [ ! -s "$DATA/PG_VERSION" ]; then
        as_owner "$bin/initdb" -D "$DATA" -U "$DB_USER" --auth=trust -E UTF8 --locale=C.UTF-8 >"$BASE/initdb.log" 2>&1 \
            || { cat "$BASE/initdb.log" >&2; exit 1; }
    fi
    as_owner "$bin/pg_ctl" -D "$DATA" -l "$BASE/server.log" -w -t 60 \
        -o "-p $PORT -k $BASE -c listen_addresses=127.0.0.1 -c fsync=off" start >&2 \
        || { cat "$BASE/server.log" >&2; exit 1; }
    as_owner "$bin/createdb" -h 127.0.0.1 -p "$PORT" -U "$DB_USER" "$DB_NAME" 2>/dev/null || true
fi
echo "export SAMBUS_TEST_POSTGRES_URL=$URL"
