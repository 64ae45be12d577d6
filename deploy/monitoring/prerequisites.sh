#!/usr/bin/env bash
# promtool checks deploy/monitoring/alerts.yaml (tests/unit/test_deploy.py). It comes with Debian's
# `prometheus` package; as root on a Debian-like machine it is installed, elsewhere we say what to install.
set -euo pipefail
command -v promtool >/dev/null 2>&1 && exit 0
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "installing prometheus (for promtool, which checks the alert rules)" >&2
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus >/dev/null
  exit 0
fi
echo "error: promtool is needed to check the alert rules; install Debian's prometheus package, or" >&2
echo "  go install github.com/prometheus/prometheus/cmd/promtool@v0.54.1" >&2
exit 1
