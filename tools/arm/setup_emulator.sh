#!/usr/bin/env bash
# Set up what the emulated ARM checks need (idempotent; `make test` runs it):
#   1. qemu-aarch64-static (Debian's qemu-user-static), installed when missing and we may;
#   2. an arm64 Debian bookworm root with CPython 3.11 and the runtime's packages (aarch64 wheels
#      from PyPI plus the project's own paddlelite wheel), under .cache/arm/py311, and a wrapper
#      .cache/arm/python3.11 that runs it under qemu (subprocesses re-enter qemu through it).
# Where qemu cannot be installed, the ARM tests are skipped with a loud message, never silently.
set -euo pipefail
cd "$(dirname "$0")/../.."
cache=.cache/arm
root=$cache/py311
wheels=third_party/paddlelite-aarch64
log() { echo "[arm emulator] $*" >&2; }

if ! command -v qemu-aarch64-static >/dev/null; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    log "installing qemu-user-static and debootstrap (Debian packages)"
    apt-get install -y -qq --no-install-recommends qemu-user-static debootstrap >/dev/null \
      || { apt-get update -qq && apt-get install -y -qq --no-install-recommends qemu-user-static debootstrap >/dev/null; }
  else
    log "WARNING: qemu-aarch64-static is missing and cannot be installed here (not root / no apt-get);"
    log "WARNING: the emulated ARM checks will be SKIPPED. Install qemu-user-static to run them."
    exit 0
  fi
fi

# rebuilt when the runtime wheel or the project's code changes
stamp=$root/.complete-$(cat $wheels/PROVENANCE.json pyproject.toml $(find edge -name '*.py' -o -name '*.yaml' | sort) \
  2>/dev/null | sha256sum | cut -c1-12)
if [ -f "$stamp" ]; then
  exit 0
fi
if ! ls $wheels/paddlelite-*-cp311-*.whl >/dev/null 2>&1; then
  log "WARNING: no cp311 aarch64 paddlelite wheel in $wheels; the emulated-Python check will be SKIPPED"
  exit 0
fi
if [ -x "$root/usr/bin/python3.11" ]; then   # only the project changed: keep the root, reinstall the site
  rm -rf "$root/opt/site" "$root"/.complete-*
else
  command -v debootstrap >/dev/null || apt-get install -y -qq --no-install-recommends debootstrap >/dev/null
  rm -rf "$root" && mkdir -p "$cache"
  log "arm64 bookworm root with CPython 3.11 (about a minute)"
  debootstrap --foreign --arch=arm64 --variant=minbase --include=python3.11,libpython3.11-stdlib,libstdc++6,libgomp1 \
    bookworm "$root" "${DEBIAN_MIRROR:-http://deb.debian.org/debian}" >"$cache/debootstrap.log" 2>&1 \
    || { tail -5 "$cache/debootstrap.log" >&2; exit 1; }
  for deb in "$root"/var/cache/apt/archives/*.deb; do dpkg-deb -x "$deb" "$root"; done   # no second stage needed
  rm -rf "$root"/var/cache/apt/archives/*.deb
fi

site=$root/opt/site
# Installed the way a board owner installs it (README, "Raspberry Pi / Jetson"): the project's wheel
# with the `lite` extra, paddlelite found through --find-links, everything else aarch64 wheels from PyPI.
log "pip install paddlex-edge-seg[lite] for aarch64 CPython 3.11 (--find-links $wheels)"
rm -rf "$cache/dist" && python3 -m pip wheel --quiet --no-deps -w "$cache/dist" . >/dev/null
python3 -m pip install --quiet --target "$site" --python-version 3.11 --only-binary=:all: \
  --platform manylinux_2_31_aarch64 --platform manylinux_2_29_aarch64 --platform manylinux_2_28_aarch64 --platform manylinux2014_aarch64 --no-warn-conflicts \
  --find-links "$cache/dist" --find-links "$wheels" "paddlex-edge-seg[lite]"

# The wrapper is sys.executable inside the emulated Python, so `subprocess.run([sys.executable, ...])`
# re-enters qemu instead of trying to exec an aarch64 binary on the host.
repo=$(pwd)
cat > "$cache/python3.11" <<WRAPPER
#!/bin/sh
export PYTHONHOME="$repo/$root/usr" PYTHONPATH="$repo/$site\${PYTHONPATH:+:\$PYTHONPATH}" PYTHONNOUSERSITE=1
exec qemu-aarch64-static -L "$repo/$root" -0 "\$0" "$repo/$root/usr/bin/python3.11" "\$@"
WRAPPER
chmod +x "$cache/python3.11"
"$cache/python3.11" -c 'import paddlelite.lite as l, numpy, cv2; print("emulated aarch64 python ok:", l.version(), numpy.__version__, cv2.__version__)'
touch "$stamp"
