#!/usr/bin/env bash
# Validates FHIR R4 JSON offline with HAPI FHIR's instance validator, many files in one JVM.
#   validate.sh [--conformance DIR]... FILE_OR_DIR...   one JSON line per file; exit 1 on any error
#   validate.sh --build                                 only build (Maven Central the first time, then offline)
# Needs a JDK 17+ and Maven (prerequisites.sh installs them as root on Debian).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
stamp="$here/lib/.built"

build() {
  if [ -f "$stamp" ] && [ -z "$(find "$here/pom.xml" "$here/src" -newer "$stamp" -print -quit)" ]; then
    return 0
  fi
  local log
  log=$(mktemp)
  # Offline once the jars are in ~/.m2; the first build fetches them from Maven Central.
  if ! mvn -q -B -o -f "$here/pom.xml" package >"$log" 2>&1 && ! mvn -q -B -f "$here/pom.xml" package >"$log" 2>&1; then
    echo "error: building the FHIR validator with Maven failed:" >&2
    tail -n 40 "$log" >&2
    rm -f "$log"
    return 1
  fi
  rm -f "$log"
  touch "$stamp"
}

command -v mvn >/dev/null 2>&1 || { echo "error: the FHIR validator needs Maven (mvn); run $here/prerequisites.sh" >&2; exit 2; }
java="${JAVA_HOME:+$JAVA_HOME/bin/}java"
command -v "$java" >/dev/null 2>&1 || { echo "error: the FHIR validator needs Java 17+; run $here/prerequisites.sh" >&2; exit 2; }

# Several test processes may build at once: one builds, the others wait for it.
exec 9>"$here/.build.lock"
flock 9
build || exit 2
flock -u 9

[ "${1:-}" = "--build" ] && exit 0
exec "$java" -XX:+UseSerialGC -XX:TieredStopAtLevel=1 -cp "$here/target/classes:$here/lib/*" se.sambus.fhirvalidator.Main "$@"
