"""Tiny real Paddle programs for the compat / optimize tests, and ways to run them.

Each `Layer` below, saved by Paddle 3.0.0 in legacy mode, shows one of the problems Paddle Lite
2.13rc0 has with such programs (docs/TOOLCHAIN.md). Helpers run a program with Paddle Inference
(the reference) and a `.nb` with Paddle Lite in a child process, so an abort or segfault inside
Lite fails a test instead of killing pytest.
"""
from __future__ import annotations

import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Sequence, Union

import export  # noqa: F401  (PIR off before paddle is imported: legacy programs)
import numpy as np
import paddle
from paddle import nn


class ConvRelu(nn.Layer):
    """A clean program: conv + bias + relu, nothing to rewrite."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2D(3, 4, 3, padding=1)

    def forward(self, x):
        return nn.functional.relu(self.conv(x))


class FlattenLinear(nn.Layer):
    """flatten_contiguous_range (saved without XShape) -> matmul_v2: opt segfaults on x86."""

    def __init__(self):
        super().__init__()
        self.linear = nn.Linear(4 * 4 * 4, 5)

    def forward(self, x):
        return self.linear(x.flatten(1))


class ReshapeLinear(nn.Layer):
    """reshape2 -> matmul_v2; unsqueeze2 / squeeze2 (saved without XShape, which Lite accepts)."""

    def __init__(self):
        super().__init__()
        self.linear = nn.Linear(4 * 4 * 4, 5)

    def forward(self, x):
        return self.linear(x.reshape([1, 64])) + x.unsqueeze(0).squeeze(0).mean()


class Swish(nn.Layer):
    """swish saved without a beta attribute."""

    def forward(self, x):
        return nn.functional.swish(x)


class Bmm(nn.Layer):
    """bmm, which has no Lite kernel."""

    def forward(self, x):
        return paddle.bmm(x, x.transpose([0, 2, 1]))


class AnyPositive(nn.Layer):
    """reduce_any, whose `dim` Paddle 3 saves as LONGS."""

    def forward(self, x):
        return paddle.any(x > 0.5, axis=1).astype("float32")


class BoolMul(nn.Layer):
    """bool * bool elementwise_mul (PP-YOLOE-seg's mask crop does this)."""

    def forward(self, x):
        return ((x > 0.2) * (x < 0.8)).astype("float32")


class AssignConstant(nn.Layer):
    """assign_value whose values are stored as SCALARS."""

    def forward(self, x):
        return x + paddle.to_tensor([1.0, 2.0, 3.0, 4.0])


class SetValue(nn.Layer):
    """set_value (slice assignment) whose values are stored as SCALARS."""

    def forward(self, x):
        y = x * 1.0
        y[:, 1] = 3.0
        return y


class BoolBuffer(nn.Layer):
    """A BOOL persistable tensor (like Mask-RT-DETR's anchor-valid mask)."""

    def __init__(self):
        super().__init__()
        self.register_buffer("valid", paddle.to_tensor(np.array([[True, False, True, True]])), persistable=True)

    def forward(self, x):
        return paddle.where(self.valid, x, paddle.zeros_like(x))


class ZeroDimConstant(nn.Layer):
    """A 0-D fill_constant (shape []) feeding a multiply and a tile."""

    def forward(self, x):
        return paddle.tile(x * paddle.full([], 2.0), [2, 1])


class SumAll(nn.Layer):
    """x.sum(): Paddle 3 saves reduce_sum with dim=[] and reduce_all=False."""

    def forward(self, x):
        return paddle.tile(x.sum(), [3]) + x.mean()


class ZeroDimParameter(nn.Layer):
    """A 0-D parameter."""

    def __init__(self):
        super().__init__()
        self.scale = self.create_parameter([], default_initializer=nn.initializer.Constant(1.5))

    def forward(self, x):
        return x * self.scale


class Erfinv(nn.Layer):
    """erfinv: an op Paddle Lite 2.13 has no kernel for on any target, and no rewrite fixes."""

    def forward(self, x):
        return paddle.erfinv(x * 0.5)


class DeformableWeights(nn.Layer):
    """reshape2 -> transpose2(0, 2, 1, 3, 4) -> reshape2, as in Mask-RT-DETR's deformable attention.

    Not a channel shuffle, but Lite's shuffle_channel fuser takes it for one when all three ops
    have XShape outputs (Paddle 3 saves reshape2 with XShape and transpose2 without)."""

    def forward(self, x):  # x: [1, 30, 96]
        weights = x.reshape([1, 30, 8, 3, 4]).transpose([0, 2, 1, 3, 4]).reshape([8, 1, 30, 12])
        values = x.reshape([1, 30, 8, 12]).transpose([0, 2, 1, 3]).reshape([8, 1, 30, 12]).tile([1, 4, 1, 1])
        return values * weights


def save_legacy(layer: nn.Layer, out_dir: Path, input_shape: Sequence[int]) -> Path:
    """Save `layer(x)` as a legacy inference directory (inference.pdmodel [+ .pdiparams])."""
    paddle.seed(0)
    layer.eval()
    spec = [paddle.static.InputSpec(list(input_shape), "float32", "x")]
    static_layer = paddle.jit.to_static(layer, input_spec=spec, full_graph=True)
    paddle.jit.save(static_layer, str(Path(out_dir) / "inference"))
    info = Path(out_dir) / "inference.pdiparams.info"
    if info.exists():
        info.unlink()
    return Path(out_dir)


Feeds = Union[np.ndarray, Dict[str, np.ndarray]]


def _feed_dict(feeds: Feeds, names: List[str]) -> Dict[str, np.ndarray]:
    return feeds if isinstance(feeds, dict) else {names[0]: feeds}


def run_paddle(model_dir: Path, feeds: Feeds) -> List[np.ndarray]:
    """Paddle Inference on CPU (oneDNN off: it cannot run some tiny 0-D programs).

    `feeds`: one array for the single input, or {input name: array}."""
    model_dir = Path(model_dir)
    params = model_dir / "inference.pdiparams"
    with tempfile.TemporaryDirectory() as scratch:
        if not params.exists():  # no parameters: Paddle wants a params file all the same
            params = Path(scratch) / "empty.pdiparams"
            params.write_bytes(b"")
        config = paddle.inference.Config(str(model_dir / "inference.pdmodel"), str(params))
        config.disable_glog_info()
        config.disable_mkldnn()
        predictor = paddle.inference.create_predictor(config)
        for name, value in _feed_dict(feeds, predictor.get_input_names()).items():
            predictor.get_input_handle(name).copy_from_cpu(value)
        predictor.run()
        return [predictor.get_output_handle(n).copy_to_cpu() for n in predictor.get_output_names()]


_LITE_RUNNER = r"""
import sys
import numpy as np
from paddlelite import lite
config = lite.MobileConfig()
config.set_model_from_file(sys.argv[1])
predictor = lite.create_paddle_predictor(config)
feeds = np.load(sys.argv[2])
names = predictor.get_input_names()
for name in feeds.files:
    predictor.get_input_by_name(names[0] if name == "__single__" else name).from_numpy(feeds[name])
predictor.run()
outputs = [predictor.get_output(i).numpy() for i in range(len(predictor.get_output_names()))]
np.savez(sys.argv[3], *outputs)
"""


@dataclass
class LiteRun:
    returncode: int
    log: str
    outputs: List[np.ndarray] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.returncode == 0


def run_lite(nb_path: Path, feeds: Feeds, timeout_s: float = 120.0) -> LiteRun:
    """Run a `.nb` on this host's Lite (x86) in a child process; a crash is a returncode < 0."""
    with tempfile.TemporaryDirectory() as scratch:
        x_path, out_path = Path(scratch) / "feeds.npz", Path(scratch) / "out.npz"
        np.savez(x_path, **(feeds if isinstance(feeds, dict) else {"__single__": feeds}))
        proc = subprocess.run([sys.executable, "-c", _LITE_RUNNER, str(nb_path), str(x_path), str(out_path)],
                              capture_output=True, text=True, timeout=timeout_s)
        run = LiteRun(proc.returncode, proc.stdout + proc.stderr)
        if proc.returncode == 0:
            with np.load(out_path) as saved:
                run.outputs = [saved[f"arr_{i}"] for i in range(len(saved.files))]
        return run


def max_abs_diff(reference: List[np.ndarray], actual: List[np.ndarray]) -> float:
    """Largest difference over all outputs; Lite returns 0-D outputs as [1], which is compared as equal shape."""
    assert len(reference) == len(actual), f"{len(reference)} reference outputs, {len(actual)} Lite outputs"
    worst = 0.0
    for ref, got in zip(reference, actual):
        ref = ref.reshape([1]) if ref.ndim == 0 else ref
        assert ref.shape == got.shape, f"shape {got.shape} from Lite, {ref.shape} from Paddle"
        worst = max(worst, float(np.abs(ref.astype(np.float64) - got.astype(np.float64)).max(initial=0.0)))
    return worst
