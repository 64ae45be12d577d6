#!/usr/bin/env bash
# The FHIR validator needs a JDK 17+ (javac, to build its main class) and Maven (to fetch HAPI FHIR from Maven
# Central). As root on a Debian-like machine, what is missing is installed; elsewhere we say what to install.
set -euo pipefail

jdk_ok() {
  local javac="${JAVA_HOME:+$JAVA_HOME/bin/}javac"
  command -v "$javac" >/dev/null 2>&1 || return 1
  local version
  version=$("$javac" -version 2>&1 | awk '{print $2}')
  [ "${version%%.*}" -ge 17 ] 2>/dev/null
}

missing=()
jdk_ok || missing+=(openjdk-17-jdk-headless)
command -v mvn >/dev/null 2>&1 || missing+=(maven)
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "installing ${missing[*]} (needed for the FHIR validator)" >&2
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  exit 0
fi
echo "error: the FHIR validator needs ${missing[*]}; install them" >&2
exit 1
