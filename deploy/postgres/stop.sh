#!/usr/bin/env bash
# Stop the test PostgreSQL server that start.sh started and delete its cluster.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
source "$here/env.sh"

bin="$(pg_bin)"
if [ -n "$bin" ] && [ -s "$DATA/PG_VERSION" ]; then
    as_owner "$bin/pg_ctl" -D "$DATA" -m fast -w stop >&2 || true
fi
rm -rf "$BASE"
