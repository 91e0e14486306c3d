"""Paddle Lite kernels that are wrong in stock 2.13-rc and fixed in the aarch64 runtime this project ships.

The fixes are our patches in tools/arm/patches, applied by tools/arm/build.sh and listed in
third_party/paddlelite-aarch64/PROVENANCE.json. A `.nb` whose ops run on one of these kernels gives
wrong results on a stock Paddle Lite runtime (an official Android or ARM Linux prebuilt), so the
exporter records in the bundle's manifest, as `runtime_requires`, which fix the runtime must carry.

    required_fixes(kernels) -> list of {"patch", "kernel", "why"}: one entry per fix the `.nb`'s
        kernels (export.optimize.nb_kernels) need; empty when a stock runtime computes it right.
"""
from __future__ import annotations

from typing import Dict, Iterable, List, Tuple

from .optimize import NbKernel

# (op type, kernel target) -> (patch, what goes wrong without it)
KNOWN_DEFECTS: Dict[Tuple[str, str], Tuple[str, str]] = {
    ("grid_sampler", "arm"): (
        "0001-arm-grid_sampler-output-size.patch",
        "stock Paddle Lite 2.13-rc's ARM grid_sampler sizes its loops by the input's HxW instead of the "
        "grid's: wrong output (or a heap overrun) whenever they differ, as in Mask-RT-DETR's deformable "
        "attention; run this bundle on the project's aarch64 runtime (third_party/paddlelite-aarch64) or a "
        "Paddle Lite build carrying this patch"),
}


def required_fixes(kernels: Iterable[NbKernel]) -> List[Dict[str, str]]:
    """The runtime fixes a `.nb` with these kernels needs, in patch order, each once."""
    needed = {(k.op_type, k.target) for k in kernels} & set(KNOWN_DEFECTS)
    fixes = sorted((KNOWN_DEFECTS[key][0], f"{key[0]}/{key[1]}", KNOWN_DEFECTS[key][1]) for key in needed)
    return [{"patch": patch, "kernel": kernel, "why": why} for patch, kernel, why in fixes]
