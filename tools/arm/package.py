"""Turn the aarch64 build (tools/arm/build.sh) into what the repository ships: one wheel per CPython,
the light-API library, the static runner, and PROVENANCE.json (source, flags, compiler, sha256s).

A wheel is a zip with a dist-info; writing it directly keeps the packaging independent of setuptools
on the build machine and makes the file list explicit.
"""
from __future__ import annotations

import argparse
import base64
import hashlib
import json
import platform
import shutil
import subprocess
import sys
import zipfile
from datetime import datetime, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import elf  # noqa: E402

VERSION = "2.13rc0"
LOCAL = "edge1"   # bump when the build changes; pip's `paddlelite==2.13rc0` still matches 2.13rc0+edge1
PYTHON_INIT = b'"""Paddle Lite light-API runtime (MobileConfig + light predictor) for aarch64 Linux,\n' \
              b'built by paddlex-edge-seg from Paddle Lite v2.13-rc; see PROVENANCE.json in its repository."""\n'


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _record_hash(data: bytes) -> str:
    return "sha256=" + base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()


def write_wheel(out: Path, module: Path, libgomp: Path, py_tag: str, floor: tuple) -> Path:
    platform_tag = f"manylinux_{floor[0]}_{floor[1]}_aarch64"
    version = f"{VERSION}+{LOCAL}"
    dist_info = f"paddlelite-{version}.dist-info"
    files = {
        "paddlelite/__init__.py": PYTHON_INIT,
        f"paddlelite/{module.name}": module.read_bytes(),
        "paddlelite/libgomp.so.1": libgomp.read_bytes(),   # found through the module's RPATH $ORIGIN
        f"{dist_info}/METADATA": (
            "Metadata-Version: 2.1\nName: paddlelite\n"
            f"Version: {version}\nSummary: Paddle Lite light-API Python runtime for aarch64 Linux "
            "(built by paddlex-edge-seg)\nLicense: Apache-2.0\nRequires-Python: "
            f"=={py_tag[2]}.{py_tag[3:]}.*\nRequires-Dist: numpy\n").encode(),
        f"{dist_info}/WHEEL": (
            "Wheel-Version: 1.0\nGenerator: paddlex-edge-seg tools/arm/package.py\nRoot-Is-Purelib: false\n"
            f"Tag: {py_tag}-{py_tag}-{platform_tag}\n").encode(),
        f"{dist_info}/top_level.txt": b"paddlelite\n",
    }
    record = "".join(f"{name},{_record_hash(data)},{len(data)}\n" for name, data in files.items())
    record += f"{dist_info}/RECORD,,\n"
    path = out / f"paddlelite-{version}-{py_tag}-{py_tag}-{platform_tag}.whl"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as wheel:
        for name, data in files.items():
            info = zipfile.ZipInfo(name, date_time=(2023, 3, 27, 0, 0, 0))   # reproducible: the tag's date
            info.external_attr = (0o755 if name.endswith(".so") or ".so." in name else 0o644) << 16
            wheel.writestr(info, data, zipfile.ZIP_DEFLATED)
        info = zipfile.ZipInfo(f"{dist_info}/RECORD", date_time=(2023, 3, 27, 0, 0, 0))
        wheel.writestr(info, record, zipfile.ZIP_DEFLATED)
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--built", type=Path, required=True)
    parser.add_argument("--source", type=Path, required=True)
    parser.add_argument("--python-dir", type=Path, required=True)
    parser.add_argument("--cmake-flags", required=True)
    parser.add_argument("--patches", type=Path, required=True,
                        help="folder of the .patch files build.sh applied to the source, in name order")
    parser.add_argument("--started", required=True)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()

    staging = args.out.with_name(args.out.name + ".partial")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    libgomp = args.built / "libgomp.so.1"
    floors = {}
    for module in sorted(args.built.glob("lite.cpython-*-aarch64-linux-gnu.so")):
        py_tag = "cp" + module.name.split("-")[1]
        floor = max(elf.glibc_floor(module), elf.glibc_floor(libgomp))
        floors[py_tag] = floor
        write_wheel(staging, module, libgomp, py_tag, floor)
    for name in ("lite_runner", "libpaddle_light_api_shared.so"):
        shutil.copy2(args.built / name, staging / name)

    git = lambda *a: subprocess.run(["git", "-C", str(args.source), *a], check=True, capture_output=True,  # noqa: E731
                                    text=True).stdout.strip()
    provenance = {
        "what": "Paddle Lite light-API runtime for aarch64 Linux, all ARM kernels, built by tools/arm/build.sh",
        "source": {"repository": "https://github.com/PaddlePaddle/Paddle-Lite", "tag": git("describe", "--tags"),
                   "commit": git("rev-parse", "HEAD"), "submodules": "none used (light API only)"},
        # Our fixes on top of the tag (tools/arm/patches), so the runtime's behaviour is traceable.
        "patches": [{"name": p.name, "sha256": _sha256(p.read_bytes())}
                    for p in sorted(args.patches.glob("*.patch"))],
        "cmake_flags": args.cmake_flags.split(),
        "compiler": (args.built / "compiler").read_text().strip(),
        "sysroot": "Debian bullseye (glibc 2.31) via tools/arm/toolchain.sh",
        "pybind11": "2.13.6 (PyPI)",
        "python_headers": {d.name: (d / "version").read_text().strip() for d in sorted(args.python_dir.iterdir())},
        "glibc_floor": {tag: "%d.%d" % f for tag, f in floors.items()},
        "build_started": args.started,
        "build_finished": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "build_host": f"{platform.machine()} {platform.system()} {platform.release()}",
        "files": {p.name: {"sha256": _sha256(p.read_bytes()), "bytes": p.stat().st_size}
                  for p in sorted(staging.iterdir())},
    }
    (staging / "PROVENANCE.json").write_text(json.dumps(provenance, indent=2) + "\n")
    shutil.rmtree(args.out, ignore_errors=True)
    staging.rename(args.out)
    for name, entry in provenance["files"].items():
        print(f"{entry['bytes'] / 1e6:7.2f} MB  {name}")


if __name__ == "__main__":
    main()
