"""The program stage: turn a Paddle network into a legacy inference directory Paddle Lite can read."""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Tuple

from edge.spec import ModelSpec

logger = logging.getLogger(__name__)


def save_inference_dir(layer, out_dir: Path, spec: ModelSpec, input_size: Tuple[int, int]) -> Path:
    """Trace `layer(im_shape, image, scale_factor)` at batch 1 and save a legacy inference directory.

    Writes `inference.pdmodel`, `inference.pdiparams` and `inference.yml` (PaddleDetection's keys,
    plus `mask_layout` for edge graphs). Returns `out_dir`.
    """
    import paddle  # imported late: `export/__init__` must have turned the PIR API off first

    if paddle.framework.in_pir_mode() if hasattr(paddle.framework, "in_pir_mode") else False:
        raise RuntimeError("Paddle is in PIR mode; import `export` before paddle so legacy programs are saved")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    h, w = input_size
    input_spec = [
        paddle.static.InputSpec([1, 2], "float32", spec.input_names[0]),
        paddle.static.InputSpec([1, 3, h, w], "float32", spec.input_names[1]),
        paddle.static.InputSpec([1, 2], "float32", spec.input_names[2]),
    ]
    layer.eval()
    static_layer = paddle.jit.to_static(layer, input_spec=input_spec, full_graph=True)
    paddle.jit.save(static_layer, str(out_dir / "inference"))
    info = out_dir / "inference.pdiparams.info"
    if info.exists():
        info.unlink()
    spec.write_inference_yml(out_dir / "inference.yml")
    logger.info("saved legacy inference program to %s", out_dir)
    return out_dir
