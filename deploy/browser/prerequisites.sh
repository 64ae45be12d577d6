#!/usr/bin/env bash
# The browser tests drive Debian's chromium with Playwright (no browser download).
# Installs it with apt-get when missing and running as root; otherwise says what to install.
set -euo pipefail
if command -v chromium >/dev/null 2>&1; then
  exit 0
fi
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  apt-get update -q
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium
else
  echo "chromium is missing: install Debian's chromium package (apt-get install -y chromium);" \
    "the browser tests fail under CI=true without it and skip elsewhere" >&2
fi
