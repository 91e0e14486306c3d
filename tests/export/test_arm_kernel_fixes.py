"""Our fixes to Paddle Lite's ARM kernels (tools/arm/patches), each against Paddle, on ARM kernels under qemu.

grid_sampler (0001): stock Paddle Lite 2.13-rc sizes the ARM kernel's loops by the INPUT's H x W instead of
the grid's; it is right only when they are equal. Mask-RT-DETR's deformable attention samples Lq x P points
from feature maps of other sizes, so these programs use a grid whose H x W differs from the input's, smaller
and larger, both modes, as the decoder does (align_corners=False, zeros padding, points a little outside
[-1, 1] included).

reduce_mean over all elements (0002): stock 2.13-rc's ARM reduce_mean_all assigns instead of adding, so
`x.mean()` is the last element / N.

sigmoid (0004): stock 2.13-rc's ARM sigmoid is good to 7.7e-6 relative (a reciprocal estimate and one
Newton step); Mask-RT-DETR-S's boxes then drift 0.1 px from x86 Lite.

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


def arm_nb_of(layer: nn.Layer, x_shape, tmp_path: Path, op_type: str) -> Path:
    """`layer` (one input "x") saved, made loadable by Lite (compat passes) and converted to an ARM `.nb`
    whose `op_type` runs on an ARM kernel."""
    layer.eval()
    spec = [paddle.static.InputSpec(list(x_shape), "float32", "x")]
    paddle.jit.save(paddle.jit.to_static(layer, input_spec=spec, full_graph=True), str(tmp_path / "src" / "inference"))
    apply_compat_passes(tmp_path / "src", tmp_path / "fixed")
    nb = optimize(tmp_path / "fixed", tmp_path / "model", target="arm")
    assert any(k.op_type == op_type and k.target == "arm" for k in nb_kernels(nb))
    return nb


class PlusMean(nn.Layer):
    """x + x.mean(): reduce_mean over every axis (Paddle 3 saves it with dim=[], made reduce_all by compat)."""

    def forward(self, x):
        return x * 2.0 + x.mean()


@needs_emulator
def test_arm_reduce_mean_over_all_elements_matches_paddle(tmp_path):
    x = np.random.RandomState(3).uniform(0.2, 1.0, (1, 30, 64)).astype("float32")
    nb = arm_nb_of(PlusMean(), x.shape, tmp_path, "reduce_mean")
    got = emulator.run_nb(nb, {"x": x}, timeout=300)[0]
    expected = x * 2.0 + x.mean()
    diff = float(np.abs(got - expected).max())
    print("ARM x*2 + x.mean() vs numpy, max |diff|:", diff, "(the mean is", float(x.mean()), ")")
    assert diff <= 1e-5


class SharedMLP(nn.Layer):
    """One MLP applied to two inputs, as RT-DETR's query_pos_head runs in every decoder layer."""

    def __init__(self):
        super().__init__()
        self.a, self.b = nn.Linear(4, 64), nn.Linear(64, 32)

    def forward(self, x):
        mlp = lambda t: self.b(nn.functional.relu(self.a(t)))  # noqa: E731
        return paddle.concat([mlp(nn.functional.sigmoid(x[:, :, :4])), mlp(nn.functional.sigmoid(x[:, :, 4:8]))], -1)


@needs_emulator
def test_arm_int8_fc_with_a_weight_shared_by_two_ops_matches_paddle(tmp_path):
    """Stock 2.13-rc's ARM int8 fc packs its weight in place (0003): every use after the first was wrong."""
    import cv2
    from export.quantize import quantize

    def feeds(image):   # calibration and test inputs made from real photos
        gray = cv2.resize(cv2.cvtColor(image, cv2.COLOR_BGR2GRAY), (8, 30)).astype("float32")
        return {"x": (gray / 64.0 - 2.0)[None]}

    paddle.seed(0)
    layer = SharedMLP()
    layer.eval()
    spec = [paddle.static.InputSpec([1, 30, 8], "float32", "x")]
    paddle.jit.save(paddle.jit.to_static(layer, input_spec=spec, full_graph=True), str(tmp_path / "src" / "inference"))
    images = sorted((Path(__file__).resolve().parents[2] / "samples" / "coco").glob("*.jpg"))
    quantize(tmp_path / "src", tmp_path / "int8", images, preprocess=feeds, auto_keep_head=False, min_images=1)
    nb = optimize(tmp_path / "int8", tmp_path / "model", target="arm")
    assert sum(k.op_type == "fc" and k.precision == "int8" for k in nb_kernels(nb)) == 4
    x = feeds(cv2.imread(str(images[0])))
    config = paddle.inference.Config(str(tmp_path / "int8" / "inference.pdmodel"), str(tmp_path / "int8" / "inference.pdiparams"))
    config.disable_mkldnn()
    predictor = paddle.inference.create_predictor(config)
    predictor.get_input_handle("x").copy_from_cpu(x["x"])
    predictor.run()
    expected = predictor.get_output_handle(predictor.get_output_names()[0]).copy_to_cpu()[0]   # simulated INT8
    got = emulator.run_nb(nb, x, timeout=300)[0][0]
    diffs = {use: float(np.abs(got[:, cols] - expected[:, cols]).max()) for use, cols in
             (("first use", slice(0, 32)), ("second use", slice(32, 64)))}
    print("ARM int8 fc vs Paddle's simulated INT8, max |diff|:", diffs, "largest value", float(np.abs(expected).max()))
    assert max(diffs.values()) <= 1e-4 * float(np.abs(expected).max())


class Sigmoid(nn.Layer):
    def forward(self, x):
        return nn.functional.sigmoid(x)


@needs_emulator
def test_arm_sigmoid_is_as_precise_as_paddles(tmp_path):
    """Stock 2.13-rc's ARM sigmoid divides by a refined reciprocal estimate (7.7e-6 relative measured, 0004);
    RT-DETR's decoders feed every layer's sigmoid back through inverse_sigmoid, so it adds up."""
    x = np.linspace(-12, 12, 4 * 1024, dtype="float32").reshape(1, 4, 32, 32)
    nb = arm_nb_of(Sigmoid(), x.shape, tmp_path, "sigmoid")
    got = emulator.run_nb(nb, {"x": x}, timeout=300)[0].astype("float64")
    expected = 1.0 / (1.0 + np.exp(-x.astype("float64")))
    relative = float(np.max(np.abs(got - expected) / expected))
    print("ARM sigmoid vs float64, max relative error:", relative)
    assert relative <= 1e-6
