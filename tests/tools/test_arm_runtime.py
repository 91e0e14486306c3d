"""The committed aarch64 Paddle Lite runtime (third_party/paddlelite-aarch64, built by tools/arm/build.sh).

Checked without an ARM machine: the provenance file's sha256 list, the wheels' layout and tags, and
what each binary needs from a board (shared libraries, glibc floor <= 2.31 for JetPack 5 and
Raspberry Pi OS bullseye). Running them is tests/export/test_verify_arm.py and
tests/edge/test_aarch64_python.py (under qemu).
"""
import base64
import hashlib
import json
import re
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
RUNTIME = ROOT / "third_party" / "paddlelite-aarch64"
sys.path.insert(0, str(ROOT / "tools" / "arm"))
import elf  # noqa: E402

PROVENANCE = json.loads((RUNTIME / "PROVENANCE.json").read_text())
WHEELS = sorted(RUNTIME.glob("*.whl"))
MAX_GLIBC = (2, 31)


def test_provenance_lists_every_file_with_its_sha256():
    on_disk = {p.name for p in RUNTIME.iterdir() if p.name != "PROVENANCE.json"}
    assert on_disk == set(PROVENANCE["files"])
    for name, entry in PROVENANCE["files"].items():
        data = (RUNTIME / name).read_bytes()
        assert hashlib.sha256(data).hexdigest() == entry["sha256"], f"{name} differs from its provenance"
        assert len(data) == entry["bytes"]


def test_provenance_names_the_source_and_the_build():
    assert PROVENANCE["source"]["tag"] == "v2.13-rc"
    assert PROVENANCE["source"]["commit"].startswith("102697b54f")
    assert "-DLITE_BUILD_EXTRA=ON" in PROVENANCE["cmake_flags"]       # all ARM kernels, not tailored
    assert not any("TAILOR" in flag for flag in PROVENANCE["cmake_flags"])
    assert "aarch64-linux-gnu-g++" in PROVENANCE["compiler"]
    assert PROVENANCE["build_started"] <= PROVENANCE["build_finished"]


def test_provenance_lists_exactly_our_patches_with_their_sha256():
    """The runtime is v2.13-rc plus tools/arm/patches (e.g. the ARM grid_sampler fix): what was applied
    to the build must be what the repository holds now, byte for byte."""
    patches = sorted((ROOT / "tools" / "arm" / "patches").glob("*.patch"))
    assert patches, "tools/arm/patches holds the fixes the shipped runtime carries"
    assert PROVENANCE["patches"] == [{"name": p.name, "sha256": hashlib.sha256(p.read_bytes()).hexdigest()}
                                     for p in patches], "rebuild: tools/arm/build.sh (a patch changed)"


def test_one_wheel_per_supported_cpython():
    tags = sorted(re.match(r"paddlelite-2\.13rc0\+\w+-(cp3\d+)-\1-manylinux_2_(\d+)_aarch64\.whl", w.name).group(1)
                  for w in WHEELS)
    assert tags == ["cp310", "cp311", "cp312"], [w.name for w in WHEELS]


@pytest.mark.parametrize("wheel", WHEELS, ids=lambda w: w.name.split("-")[2])
def test_wheel_is_complete_and_its_record_is_true(wheel, tmp_path):
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        record = archive.read(next(n for n in names if n.endswith(".dist-info/RECORD"))).decode()
        for line in record.splitlines():
            name, digest, _size = line.rsplit(",", 2)
            if digest:
                actual = base64.urlsafe_b64encode(hashlib.sha256(archive.read(name)).digest()).rstrip(b"=").decode()
                assert digest == f"sha256={actual}", name
        module = next(n for n in names if n.startswith("paddlelite/lite.cpython-"))
        assert "paddlelite/libgomp.so.1" in names and "paddlelite/__init__.py" in names
        wheel_tag = archive.read(next(n for n in names if n.endswith(".dist-info/WHEEL"))).decode()
        archive.extractall(tmp_path)
    py_tag = wheel.name.split("-")[2]
    assert module.endswith(f"-{py_tag[2:]}-aarch64-linux-gnu.so") and f"Tag: {py_tag}-{py_tag}-" in wheel_tag
    so = tmp_path / module
    assert elf.machine(so) == "AArch64"
    # Everything it needs is on every glibc aarch64 system, or inside the wheel (libgomp).
    assert set(elf.needed(so)) <= elf.SYSTEM_LIBRARIES | {"libgomp.so.1"}, elf.needed(so)
    assert set(elf.needed(tmp_path / "paddlelite" / "libgomp.so.1")) <= elf.SYSTEM_LIBRARIES
    floor = max(elf.glibc_floor(so), elf.glibc_floor(tmp_path / "paddlelite" / "libgomp.so.1"))
    assert floor <= MAX_GLIBC, f"needs glibc {floor}: too new for JetPack 5 / Pi OS bullseye (2.31)"
    assert f"manylinux_{floor[0]}_{floor[1]}_aarch64" in wheel.name   # the tag tells pip the truth


def test_runner_is_a_static_aarch64_executable():
    runner = RUNTIME / "lite_runner"
    assert elf.machine(runner) == "AArch64"
    assert elf.needed(runner) == [], "the runner must run under qemu-aarch64-static with no sysroot"
    assert runner.stat().st_mode & 0o111, "git must keep the runner executable"


def test_light_api_library_needs_only_system_libraries():
    lib = RUNTIME / "libpaddle_light_api_shared.so"
    assert elf.machine(lib) == "AArch64"
    assert set(elf.needed(lib)) <= elf.SYSTEM_LIBRARIES | {"libgomp.so.1", "libstdc++.so.6", "libgcc_s.so.1"}
    assert elf.glibc_floor(lib) <= MAX_GLIBC
