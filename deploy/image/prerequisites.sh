#!/usr/bin/env bash
# The image is built with debootstrap (the root file system) and podman (the image) from Debian's packages
# (tests/packaging/test_image.py). As root on a Debian-like machine what is missing is installed.
set -euo pipefail
missing=()
command -v debootstrap >/dev/null 2>&1 || missing+=(debootstrap)
command -v podman >/dev/null 2>&1 || missing+=(podman)
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "installing ${missing[*]} (needed to build the container image)" >&2
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  exit 0
fi
echo "error: building the image needs ${missing[*]} and root; install them" >&2
exit 1
