# Shared by start.sh, stop.sh and with-postgres.sh (sourced, not run).
PORT="${SAMBUS_POSTGRES_PORT:-55432}"
BASE="${SAMBUS_POSTGRES_DIR:-${TMPDIR:-/tmp}/sambus-postgres-$PORT}"
DATA="$BASE/data"
DB_USER=sambus
DB_NAME=sambus_test
URL="postgresql+psycopg://$DB_USER@127.0.0.1:$PORT/$DB_NAME"

pg_bin() {
    # The newest installed server's bin directory (Debian keeps them in /usr/lib/postgresql/<version>/bin).
    local found
    found="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)"
    if [ -n "$found" ] && [ -x "$found/pg_ctl" ]; then
        echo "$found"
    elif command -v pg_ctl >/dev/null 2>&1; then
        dirname "$(command -v pg_ctl)"
    fi
}

port_in_use() {
    # Whether something on this machine already listens on 127.0.0.1:$1.
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

as_owner() {
    # The server refuses to run as root: as root, run it as the (Debian-made) postgres user.
    if [ "$(id -u)" = 0 ]; then
        runuser -u postgres -- "$@"
    else
        "$@"
    fi
}
