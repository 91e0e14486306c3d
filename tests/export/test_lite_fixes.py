"""required_fixes(): which of our Paddle Lite patches a .nb's kernels need (recorded in the manifest)."""
from pathlib import Path

from export.lite_fixes import KNOWN_DEFECTS, required_fixes
from export.optimize import NbKernel

PATCHES = Path(__file__).resolve().parents[2] / "tools" / "arm" / "patches"


def kernel(op_type: str, target: str) -> NbKernel:
    return NbKernel(op_type, "def", target, "float", "nchw")


def test_every_known_defect_names_a_patch_the_build_applies():
    assert {patch for patch, _why in KNOWN_DEFECTS.values()} <= {p.name for p in PATCHES.glob("*.patch")}


def test_an_arm_grid_sampler_needs_the_fix_once():
    fixes = required_fixes([kernel("conv2d", "arm"), kernel("grid_sampler", "arm"), kernel("grid_sampler", "arm")])
    assert [(f["patch"], f["kernel"]) for f in fixes] == [("0001-arm-grid_sampler-output-size.patch", "grid_sampler/arm")]
    assert "stock Paddle Lite 2.13-rc" in fixes[0]["why"]


def test_x86_kernels_and_arm_programs_without_grid_sampler_need_nothing():
    assert required_fixes([kernel("grid_sampler", "x86"), kernel("conv2d", "x86")]) == []
    assert required_fixes([kernel("conv2d", "arm"), kernel("fetch", "host")]) == []
