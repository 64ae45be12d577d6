#!/usr/bin/env bash
# Build the sambus image without pulling any base image (deploy/README.md "Image"):
#   1. debootstrap a minimal Debian root (minbase + python3), as root;
#   2. build the wheel from this checkout, fetch its dependencies as wheels (this machine's package index),
#      and install them into a virtualenv /opt/sambus made inside the root (chroot, no index);
#   3. add the user sambus (uid 10001), drop apt's caches and anything that compiles;
#   4. pack the root as rootfs.tar and, when podman or buildah is there, build the Containerfile from it.
# Usage: deploy/image/build.sh OUT_DIR [IMAGE_NAME]   (OUT_DIR gets rootfs/ and rootfs.tar)
set -euo pipefail
out=$(realpath -m "${1:?usage: build.sh OUT_DIR [IMAGE_NAME]}")
image=${2:-localhost/sambus:latest}
here=$(cd "$(dirname "$0")" && pwd)
checkout=$(cd "$here/../.." && pwd)
suite=${SAMBUS_IMAGE_SUITE:-bookworm}
mirror=${SAMBUS_IMAGE_MIRROR:-http://deb.debian.org/debian}
root="$out/rootfs"

[ "$(id -u)" = 0 ] || { echo "error: debootstrap and chroot need root" >&2; exit 1; }
command -v debootstrap >/dev/null || { echo "error: install debootstrap (apt-get install debootstrap)" >&2; exit 1; }

mkdir -p "$out"
if [ ! -x "$root/usr/bin/python3" ]; then
  rm -rf "$root"
  debootstrap --variant=minbase --include=python3,python3-venv,ca-certificates,tzdata \
    "$suite" "$root" "$mirror" >"$out/debootstrap.log" 2>&1 \
    || { tail -20 "$out/debootstrap.log" >&2; exit 1; }
fi

# The wheel and its dependencies are fetched here, with this machine's package index settings, and installed
# in the root from that folder only (the root's Python is Debian's, like this one's: the wheels fit).
rm -rf "$out/dist" "$root/tmp/wheelhouse"
python3 -m pip wheel --quiet --no-deps -w "$out/dist" "$checkout"
wheel=$(ls -t "$out"/dist/sambus-*.whl | head -1)
python3 -m pip wheel --quiet -w "$root/tmp/wheelhouse" "$wheel"
rm -rf "$root/opt/sambus"
chroot "$root" /usr/bin/python3 -m venv /opt/sambus
chroot "$root" /opt/sambus/bin/pip install --quiet --no-cache-dir --disable-pip-version-check --no-index \
  --find-links /tmp/wheelhouse "/tmp/wheelhouse/$(basename "$wheel")"
chroot "$root" /opt/sambus/bin/pip uninstall --quiet --yes pip setuptools 2>/dev/null || true
rm -rf "$root/tmp/wheelhouse"

chroot "$root" /bin/sh -c 'getent group sambus >/dev/null || groupadd --gid 10001 sambus
  getent passwd sambus >/dev/null || useradd --no-log-init --uid 10001 --gid 10001 \
    --home-dir /var/lib/sambus --no-create-home --shell /usr/sbin/nologin sambus'
mkdir -p "$root/var/lib/sambus"
chown 10001:10001 "$root/var/lib/sambus"
# No compilers, no package caches.
rm -f "$root"/usr/bin/{gcc,g++,cc,c++,cpp,as,ld}* 2>/dev/null || true
rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/* "$root"/var/log/*.log

tar --numeric-owner -C "$root" -cf "$out/rootfs.tar" .
cp "$here/Containerfile" "$out/Containerfile"
if command -v podman >/dev/null; then
  podman build --quiet -t "$image" -f "$out/Containerfile" "$out"
elif command -v buildah >/dev/null; then
  buildah bud --quiet -t "$image" -f "$out/Containerfile" "$out"
else
  echo "note: neither podman nor buildah: $out/rootfs.tar and $out/Containerfile are ready, no image built" >&2
fi
