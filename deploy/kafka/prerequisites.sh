#!/usr/bin/env bash
# The local Kafka broker needs Java 17+ (to run) and Maven (to fetch it from Maven Central).
# As root on a Debian-like machine, what is missing is installed; elsewhere we say what to install.
set -euo pipefail

java_ok() {
  command -v java >/dev/null 2>&1 || return 1
  local version
  version=$(java -XshowSettings:properties -version 2>&1 | awk -F' = ' '/java.specification.version/ {print $2}')
  [ "${version%%.*}" -ge 17 ] 2>/dev/null
}

missing=()
java_ok || missing+=(openjdk-17-jre-headless)
command -v mvn >/dev/null 2>&1 || missing+=(maven)
[ ${#missing[@]} -eq 0 ] && exit 0

if [ -n "${KAFKA_BOOTSTRAP_SERVERS:-}" ]; then
  echo "note: ${missing[*]} missing, but KAFKA_BOOTSTRAP_SERVERS is set, so no local broker is needed" >&2
  exit 0
fi
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "installing ${missing[*]} (needed for the local Kafka broker)" >&2
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  exit 0
fi
echo "error: the local Kafka broker needs ${missing[*]}; install them, or set KAFKA_BOOTSTRAP_SERVERS" >&2
exit 1
