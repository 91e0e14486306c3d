#!/usr/bin/env bash
# Build the aarch64 Paddle Lite runtime the project ships in third_party/paddlelite-aarch64/:
#   - the light-API library with all ARM kernels (libpaddle_light_api_shared.so),
#   - a static .nb runner (lite_runner) for checks under qemu-aarch64-static or on a board,
#   - Paddle Lite's own Python binding as wheels for CPython 3.10-3.12.
# Everything is compiled inside a Debian bullseye root (tools/arm/toolchain.sh) so the glibc floor
# stays <= 2.31.  One command rebuilds it all:
#
#   LITE_SRC=/path/to/Paddle-Lite tools/arm/build.sh /tmp/arm-build
#
# LITE_SRC is any git repository of PaddlePaddle/Paddle-Lite holding the tag v2.13-rc (a clone or a
# bare mirror): Lite takes its runtime version from `git describe`, and the loader refuses a .nb whose
# header differs, so a tarball without git metadata does not work. Our fixes to Lite (tools/arm/patches/*.patch,
# e.g. the ARM grid_sampler one) are applied to the checkout's work tree, uncommitted, and recorded in
# PROVENANCE.json; the version string stays v2.13-rc. The light-API build needs none of
# Lite's git submodules. pybind11 comes from PyPI, CPython headers from local interpreters
# (python3.10 ... on PATH or under pyenv). Takes ~35 min on 2 cores (all kernels), 2-3 GB of disk.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
work=$(realpath -m "${1:?usage: LITE_SRC=... build.sh WORKDIR}")
lite_src=${LITE_SRC:?set LITE_SRC to a git repository of Paddle-Lite holding the tag v2.13-rc}
jobs=${JOBS:-$(nproc)}
py_versions=${PY_VERSIONS:-"3.10 3.11 3.12"}
pybind11_version=2.13.6
lite_tag=v2.13-rc
out=${OUT:-$repo/third_party/paddlelite-aarch64}
root=$work/bullseye
w=$root/work                      # seen as /work inside the root
log() { echo "[arm build $(date +%H:%M:%S)] $*" >&2; }
started=$(date -u +%Y-%m-%dT%H:%M:%SZ)

"$here/toolchain.sh" "$root"
mkdir -p "$w"

# 1. Source: a real checkout of the tag.
if [ ! -d "$w/Paddle-Lite/.git" ]; then
  log "cloning $lite_tag from $lite_src"
  git clone --quiet --branch "$lite_tag" "$lite_src" "$w/Paddle-Lite"
fi
[ "$(git -C "$w/Paddle-Lite" describe --tags --exact-match)" = "$lite_tag" ] \
  || { echo "error: $w/Paddle-Lite is not at tag $lite_tag" >&2; exit 1; }

# 1b. Our fixes to Lite (tools/arm/patches/*.patch, applied in name order to the work tree, never
#     committed: `git describe --tags --exact-match` must stay $lite_tag, it is the runtime's version
#     and the .nb header the loader checks). Idempotent: a stamp holds the sha256 list of the applied
#     set; when it differs, the tracked files are reset to the tag and every patch is applied again
#     (untouched files keep their mtimes, so an incremental rebuild recompiles only what changed).
patch_list=$(cd "$here/patches" 2>/dev/null && sha256sum -- *.patch 2>/dev/null || true)
stamp=$w/Paddle-Lite/.git/edge-patches
if [ "$(cat "$stamp" 2>/dev/null)" != "$patch_list" ]; then
  git -C "$w/Paddle-Lite" diff --quiet || git -C "$w/Paddle-Lite" checkout --quiet -- .
  rm -f "$stamp"
  for p in "$here"/patches/*.patch; do
    [ -e "$p" ] || continue
    log "applying $(basename "$p")"
    git -C "$w/Paddle-Lite" apply --whitespace=nowarn "$p"
  done
  printf '%s' "$patch_list" > "$stamp"
fi
git -C "$w/Paddle-Lite" diff --quiet || [ -n "$patch_list" ] \
  || { echo "error: $w/Paddle-Lite has local changes that are not our patches" >&2; exit 1; }

# 2. Headers: pybind11 from PyPI (the submodule's 2.6 does not compile for CPython 3.11), CPython's
#    own headers (pyconfig.h of x86_64 and aarch64 CPython agree on every LP64 size and layout).
if [ ! -d "$w/pybind11/include" ]; then
  python3 -m pip download --quiet --no-deps --only-binary=:all: -d "$w/dl" "pybind11==$pybind11_version"
  python3 -m zipfile -e "$w"/dl/pybind11-*.whl "$w/dl/pybind11"
  mkdir -p "$w/pybind11" && cp -r "$w/dl/pybind11/pybind11/include" "$w/pybind11/"
fi
find_python() {
  "python$1" -c '' 2>/dev/null && { command -v "python$1"; return; }   # pyenv shims exist but may refuse
  ls -d "$(pyenv root 2>/dev/null || echo "$HOME/.pyenv")"/versions/"$1".*/bin/python"$1" 2>/dev/null | tail -1
}
for v in $py_versions; do
  py=$(find_python "$v"); [ -n "$py" ] || { echo "error: python$v not found (needed for its headers)" >&2; exit 1; }
  rm -rf "$w/py/$v" && mkdir -p "$w/py/$v"
  cp -r "$("$py" -c 'import sysconfig; print(sysconfig.get_paths()["include"])')" "$w/py/$v/include"
  "$py" -c 'import platform; print(platform.python_version())' > "$w/py/$v/version"
done
cp -r "$here/runner" "$w/"

# 3. The light-API library, all ARM kernels (flags measured in docs: ../shared/docs/ARM.md).
cmake_flags="-DLITE_WITH_ARM=ON -DLITE_WITH_X86=OFF -DARM_TARGET_ARCH_ABI=armv8 -DARM_TARGET_OS=armlinux \
-DARM_TARGET_LANG=gcc -DLITE_BUILD_EXTRA=ON -DLITE_ON_TINY_PUBLISH=ON -DLITE_WITH_PYTHON=OFF \
-DLITE_WITH_CV=OFF -DLITE_WITH_LOG=ON -DLITE_WITH_EXCEPTION=OFF -DWITH_ARM_DOTPROD=ON -DWITH_TESTING=OFF \
-DWITH_MKLDNN=OFF -DLITE_WITH_OPENMP=ON -DCMAKE_BUILD_TYPE=Release"
echo "$cmake_flags" > "$w/cmake_flags"
log "building the light-API library (all ARM kernels, -j$jobs)"
chroot "$root" /bin/bash -euc "
  git config --global --add safe.directory /work/Paddle-Lite
  mkdir -p /work/build && cd /work/build
  [ -f Makefile ] || cmake /work/Paddle-Lite $cmake_flags > /work/cmake.log
  make publish_inference -j$jobs > /work/make.log 2>&1 || { tail -40 /work/make.log; exit 1; }"

# 4. Static runner and the Python binding, linked from the same static library.
log "linking the runner and the Python bindings"
chroot "$root" /bin/bash -euc "
  cd /work
  lib=build/inference_lite_lib.armlinux.armv8/cxx
  flags=build/lite/api/CMakeFiles/paddle_light_api_shared.dir/flags.make
  defines=\$(sed -n 's/^CXX_DEFINES = //p' \$flags)
  includes=\$(sed -n 's/^CXX_INCLUDES = //p' \$flags)
  cxxflags=\$(sed -n 's/^CXX_FLAGS = //p' \$flags | sed 's/-fno-exceptions//g')
  mkdir -p out
  # The tiny publish ships only the shared library (its symbols hidden), so the runner and the
  # binding link Lite's objects themselves (LTO objects: gcc-ar keeps their plugin symbols). Whole
  # archive: ops and kernels register from static initialisers that nothing references.
  archive=build/libpaddle_lite_objs.a
  rm -f \$archive && find build/lite/api/CMakeFiles/PADDLELITE_OBJS.dir -name '*.o' | sort \
      | xargs aarch64-linux-gnu-gcc-ar rcs \$archive
  aarch64-linux-gnu-g++ -O2 -std=c++11 -static runner/lite_runner.cc -I\$lib/include \
      -Wl,--whole-archive \$archive -Wl,--no-whole-archive -fopenmp -lpthread -ldl -o out/lite_runner
  aarch64-linux-gnu-strip out/lite_runner
  cp \$lib/lib/libpaddle_light_api_shared.so out/
  # Lite's binding, with version() added (the tiny build has no Opt to ask).
  sed -e 's|^using lite_api::OptBase;||' \
      -e 's|^void BindLiteApi(py::module \*m) {|&\n  m->def(\"version\", []() { return paddle::lite::version(); });|' \
      Paddle-Lite/lite/api/python/pybind/pybind.cc > out/pybind.cc
  sed -i 's|#include \"lite/api/light_api.h\"|&\n#include \"lite/core/version.h\"|' out/pybind.cc
  for v in $py_versions; do
    tag=\$(echo \$v | tr -d .)
    aarch64-linux-gnu-g++ \$cxxflags \$defines \$includes -I/work/Paddle-Lite -I/work/build \
        -Ipybind11/include -Ipy/\$v/include -fexceptions -frtti -fPIC -fvisibility=hidden -shared \
        out/pybind.cc -Wl,--whole-archive \$archive -Wl,--no-whole-archive -fopenmp -lpthread -ldl \
        -static-libstdc++ -static-libgcc -Wl,--exclude-libs,ALL -Wl,-rpath,'\$ORIGIN' \
        -o out/lite.cpython-\$tag-aarch64-linux-gnu.so
    aarch64-linux-gnu-strip --strip-unneeded out/lite.cpython-\$tag-aarch64-linux-gnu.so
  done
  cp \$(aarch64-linux-gnu-g++ -print-file-name=libgomp.so.1) out/libgomp.so.1
  aarch64-linux-gnu-g++ --version | head -1 > out/compiler"

# 5. Wheels + provenance into the repository.
log "packaging into $out"
python3 "$here/package.py" --built "$w/out" --source "$w/Paddle-Lite" --python-dir "$w/py" \
  --cmake-flags "$(cat "$w/cmake_flags")" --patches "$here/patches" --started "$started" --out "$out"
log "done"
