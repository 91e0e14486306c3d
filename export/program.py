"""The program stage: turn a Paddle network into a legacy inference directory Paddle Lite can read."""
from __future__ import annotations

import logging
from pathlib import Path
from typing import List, Optional, Sequence, Tuple

from edge.errors import ExportError
from edge.inference_dir import INFERENCE_YML, PARAMS_FILE, PREFIX
from edge.spec import MaskLayout, ModelSpec
from edge.zoo import COCO_LABELS

logger = logging.getLogger(__name__)


def save_inference_dir(layer, out_dir: Path, spec: ModelSpec, input_size: Tuple[int, int]) -> Path:
    """Trace `layer(im_shape, image, scale_factor)` at batch 1 and save a legacy inference directory.

    Writes `inference.pdmodel`, `inference.pdiparams` and `inference.yml` (PaddleDetection's keys,
    plus `mask_layout` for edge graphs). Returns `out_dir`.
    """
    import paddle  # imported late: `export/__init__` must have turned the PIR API off first

    if paddle.framework.in_pir_mode() if hasattr(paddle.framework, "in_pir_mode") else False:
        raise ExportError("Paddle is in PIR mode; import `export` before paddle so legacy programs are saved")
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
    paddle.jit.save(static_layer, str(out_dir / PREFIX))
    info = out_dir / f"{PARAMS_FILE}.info"
    if info.exists():
        info.unlink()
    spec.write_inference_yml(out_dir / INFERENCE_YML)
    logger.info("saved legacy inference program to %s", out_dir)
    return out_dir


def default_labels(num_classes: int) -> List[str]:
    """COCO's 80 names for an 80-class model, otherwise class_0 .. class_{n-1}."""
    return list(COCO_LABELS) if num_classes == len(COCO_LABELS) else [f"class_{i}" for i in range(num_classes)]


def detection_spec(model_name: str, arch: str, labels: Sequence[str], input_size: Tuple[int, int],
                   mask_layout: Optional[MaskLayout] = None, interp: int = 2) -> ModelSpec:
    """inference.yml as PaddleDetection's exporter writes it for the edge models (docs/REFERENCE.md):
    Resize to the input size without keeping the ratio, NormalizeImage with norm_type none, Permute."""
    h, w = input_size
    return ModelSpec(
        model_name=model_name,
        arch=arch,
        preprocess=[
            {"type": "Resize", "target_size": [h, w], "keep_ratio": False, "interp": interp},
            {"type": "NormalizeImage", "mean": [0.0, 0.0, 0.0], "std": [1.0, 1.0, 1.0], "norm_type": "none"},
            {"type": "Permute"},
        ],
        labels=list(labels),
        draw_threshold=0.5,
        mask_layout=mask_layout or MaskLayout(),
    )
