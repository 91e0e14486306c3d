#!/usr/bin/env bash
# A Debian bullseye (glibc 2.31) amd64 root holding Debian's aarch64 cross compiler (gcc 10).
# Building inside it keeps the glibc floor of everything we ship at <= 2.31, so JetPack 5 and
# Raspberry Pi OS bullseye can load it (the host's bookworm cross toolchain would give 2.36).
# Usage: tools/arm/toolchain.sh ROOT   (idempotent; needs root and Debian's package mirror)
set -euo pipefail
root=${1:?usage: toolchain.sh ROOT}
mirror=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
packages=g++-aarch64-linux-gnu,g++,cmake,make,git,python3,ca-certificates,xz-utils,file

if [ -x "$root/usr/bin/aarch64-linux-gnu-g++" ] && [ -x "$root/usr/bin/g++" ]; then
  exit 0
fi
command -v debootstrap >/dev/null || apt-get install -y --no-install-recommends debootstrap
echo "toolchain: debootstrap bullseye into $root (a few minutes)" >&2
if [ -x "$root/usr/bin/apt-get" ]; then   # an older root: add what is missing
  chroot "$root" apt-get install -y --no-install-recommends ${packages//,/ }
  exit 0
fi
debootstrap --variant=minbase --include="$packages" bullseye "$root" "$mirror"
