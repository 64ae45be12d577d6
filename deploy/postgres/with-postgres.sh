#!/usr/bin/env bash
# Run a command with a test PostgreSQL server: with-postgres.sh pytest ...
# Exports SAMBUS_TEST_POSTGRES_URL for the command; stops the server afterwards if this script started it.
# Without SAMBUS_POSTGRES_PORT, a default port (55432) held by another program is passed over for the next
# free one (up to 55471), so a server left running elsewhere cannot fail the run.
# When no server can be had, the command still runs (the postgres tests then skip), except in CI (CI=true),
# where that is a failure.
set -uo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
source "$here/env.sh"

started=0
if [ -z "${SAMBUS_TEST_POSTGRES_URL:-}" ]; then
    bin="$(pg_bin)"
    already=0
    if [ -n "$bin" ] && as_owner "$bin/pg_ctl" -D "$DATA" status >/dev/null 2>&1; then
        already=1
    elif [ -z "${SAMBUS_POSTGRES_PORT:-}" ] && port_in_use "$PORT"; then
        taken="$PORT"
        for candidate in $(seq $((PORT + 1)) $((PORT + 39))); do
            if ! port_in_use "$candidate"; then
                export SAMBUS_POSTGRES_PORT="$candidate"
                source "$here/env.sh"
                echo "postgres: port $taken is in use by another program; using $PORT" >&2
                break
            fi
        done
    fi
    if line="$(bash "$here/start.sh")"; then
        eval "$line"
        [ "$already" = 0 ] && started=1
    else
        case "${CI:-}" in
            1|true|TRUE|yes) echo "postgres: cannot start PostgreSQL, and CI needs it" >&2; exit 1 ;;
            *) echo "postgres: cannot start PostgreSQL; the postgres tests will skip" >&2 ;;
        esac
    fi
fi

"$@"
status=$?
[ "$started" = 1 ] && bash "$here/stop.sh"
exit "$status"
