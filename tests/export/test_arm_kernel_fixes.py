"""Our fixes to Paddle Lite's ARM kernels (tools/arm/patches), each against Paddle, on ARM kernels under qemu.

grid_sampler (0001): stock Paddle Lite 2.13-rc sizes the ARM kernel's loops by the INPUT's H x W instead of
the grid's; it is right only when they are equal. Mask-RT-DETR's deformable attention samples Lq x P points
from feature maps of other sizes, so these programs use a grid whose H x W differs from the input's, smaller
and larger, both modes, as the decoder does (align_corners=False, zeros padding, points a little outside
[-1, 1] included).

reduce_mean over all elements (0002): stock 2.13-rc's ARM reduce_mean_all assigns instead of adding, so
`x.mean()` is the last element / N.

With the unpatched runtime (git main before the patches) every case here fails.
"""
from __future__ import annotations

from pathlib import Path

import export  # noqa: F401  (PIR off before paddle is imported: legacy programs)
import numpy as np
import paddle
import pytest
from paddle import nn

from export import emulator
from export.compat import apply_compat_passes
from export.optimize import nb_kernels, optimize

REASON = emulator.unavailable_reason()
needs_emulator = pytest.mark.skipif(REASON is not None, reason=f"ARM EMULATOR MISSING, ARM CHECKS NOT RUN: {REASON}")


class GridSampleBoth(nn.Layer):
    """grid_sample of one map by one grid, bilinear and nearest (two outputs)."""

    def forward(self, x, grid):
        sample = lambda mode: nn.functional.grid_sample(  # noqa: E731
            x, grid, mode=mode, padding_mode="zeros", align_corners=False)
        return sample("bilinear"), sample("nearest")


def save_program(out_dir: Path, x_shape, grid_shape) -> Path:
    spec = [paddle.static.InputSpec(list(x_shape), "float32", "x"),
            paddle.static.InputSpec(list(grid_shape), "float32", "grid")]
    layer = GridSampleBoth()
    layer.eval()
    paddle.jit.save(paddle.jit.to_static(layer, input_spec=spec, full_graph=True), str(out_dir / "inference"))
    return out_dir


# (input N, C, H, W), (grid N, out_h, out_w, 2): the grid samples fewer points than the input has
# pixels (a decoder query set on a large level), and more (the same on a small level).
CASES = {
    "grid_smaller": ((2, 3, 6, 9), (2, 5, 4, 2)),
    "grid_larger": ((2, 3, 4, 5), (2, 7, 6, 2)),
}


@needs_emulator
@pytest.mark.parametrize("case", sorted(CASES))
def test_arm_grid_sampler_matches_paddle_when_grid_and_input_sizes_differ(case, tmp_path):
    x_shape, grid_shape = CASES[case]
    rng = np.random.RandomState(7)
    x = rng.uniform(-1, 1, x_shape).astype("float32")
    grid = rng.uniform(-1.15, 1.15, grid_shape).astype("float32")   # some points fall in the zero padding
    with paddle.no_grad():
        expected = [t.numpy() for t in GridSampleBoth()(paddle.to_tensor(x), paddle.to_tensor(grid))]

    fixed = tmp_path / "fixed"
    apply_compat_passes(save_program(tmp_path / "src", x_shape, grid_shape), fixed)
    nb = optimize(fixed, tmp_path / "model", target="arm")
    sampler = [k for k in nb_kernels(nb) if k.op_type == "grid_sampler"]
    assert len(sampler) == 2 and all(k.target == "arm" for k in sampler), sampler
    got = emulator.run_nb(nb, {"x": x, "grid": grid}, timeout=300)

    assert [o.shape for o in got] == [e.shape for e in expected] == [x_shape[:2] + grid_shape[1:3]] * 2
    assert all(np.abs(e).max() > 0.1 for e in expected)   # not a trivially zero reference
    diffs = {mode: float(np.abs(a - b).max()) for mode, a, b in zip(("bilinear", "nearest"), got, expected)}
    print(case, "ARM grid_sampler vs Paddle, max |diff|:", diffs)
    assert max(diffs.values()) <= 1e-5, f"ARM grid_sampler differs from Paddle ({case}): {diffs}"


class PlusMean(nn.Layer):
    """x + x.mean(): reduce_mean over every axis (Paddle 3 saves it with dim=[], made reduce_all by compat)."""

    def forward(self, x):
        return x * 2.0 + x.mean()


@needs_emulator
def test_arm_reduce_mean_over_all_elements_matches_paddle(tmp_path):
    x = np.random.RandomState(3).uniform(0.2, 1.0, (1, 30, 64)).astype("float32")
    layer = PlusMean()
    layer.eval()
    spec = [paddle.static.InputSpec(list(x.shape), "float32", "x")]
    paddle.jit.save(paddle.jit.to_static(layer, input_spec=spec, full_graph=True), str(tmp_path / "src" / "inference"))
    apply_compat_passes(tmp_path / "src", tmp_path / "fixed")
    nb = optimize(tmp_path / "fixed", tmp_path / "model", target="arm")
    assert any(k.op_type == "reduce_mean" and k.target == "arm" for k in nb_kernels(nb))
    got = emulator.run_nb(nb, {"x": x}, timeout=300)[0]
    expected = x * 2.0 + x.mean()
    diff = float(np.abs(got - expected).max())
    print("ARM x*2 + x.mean() vs numpy, max |diff|:", diff, "(the mean is", float(x.mean()), ")")
    assert diff <= 1e-5
