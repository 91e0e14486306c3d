"""Test scaffolding: a tiny stand-in network with the official edge models' inputs, outputs and
inference.yml keys (imported as `standin` by tests and benchmarks; not part of the product).

It is a real Paddle program (conv, pooling, sigmoid, interpolation), small enough to export,
convert with `paddle_lite_opt` and run in a second: tests and benchmarks of the runtime use it
where the real networks would cost minutes. Candidates are the cells of a fixed grid over the
model input; a cell's score is the sigmoid of a conv response averaged over the cell; masks are
sigmoid(conv) maps windowed to each cell (grown by half a cell).

`graph="reference"` outputs PaddleDetection's layout (masks 0/1 at the original image size, like
Mask-RT-DETR's export); `graph="edge"` leaves the masks at 1/4 of the input (the `lowres` layout).
"""
from __future__ import annotations

from pathlib import Path
from typing import List, Optional, Tuple

import numpy as np

import export  # noqa: F401  (legacy program mode before paddle is imported)
import paddle
import paddle.nn as nn
import paddle.nn.functional as F

from edge.spec import MaskLayout, ModelSpec
from export.program import detection_spec, save_inference_dir

MASK_STRIDE = 4
GRID = 4  # GRID x GRID candidates


def _cell_windows(input_size: Tuple[int, int]) -> Tuple[np.ndarray, np.ndarray]:
    """Candidate boxes in input pixels [K,4] and their mask windows at 1/MASK_STRIDE [K,Hm,Wm]."""
    h, w = input_size
    hm, wm = h // MASK_STRIDE, w // MASK_STRIDE
    boxes, windows = [], []
    for gy in range(GRID):
        for gx in range(GRID):
            x1, y1, x2, y2 = gx * w / GRID, gy * h / GRID, (gx + 1) * w / GRID, (gy + 1) * h / GRID
            boxes.append([x1, y1, x2, y2])
            win = np.zeros((hm, wm), dtype=np.float32)
            mx, my = wm / GRID / 2, hm / GRID / 2
            win[max(0, int(y1 / MASK_STRIDE - my)): int(y2 / MASK_STRIDE + my),
                max(0, int(x1 / MASK_STRIDE - mx)): int(x2 / MASK_STRIDE + mx)] = 1.0
            windows.append(win)
    return np.asarray(boxes, dtype=np.float32), np.stack(windows)


class StandInSeg(nn.Layer):
    def __init__(self, num_classes: int = 3, input_size: Tuple[int, int] = (64, 64), graph: str = "edge"):
        super().__init__()
        if graph not in ("edge", "reference"):
            raise ValueError(f"graph must be 'edge' or 'reference', got {graph!r}")
        self.graph = graph
        self.num_classes = num_classes
        self.input_size = tuple(input_size)
        self.stem = nn.Conv2D(3, 8, 3, padding=1)
        self.cls_head = nn.Conv2D(8, num_classes, 1)
        self.mask_head = nn.Conv2D(8, 1, 1)
        boxes, windows = _cell_windows(self.input_size)
        self.cell_boxes = paddle.to_tensor(boxes)  # constants baked into the program
        self.windows = paddle.to_tensor(windows)

    def forward(self, im_shape, image, scale_factor):
        feat = F.relu(self.stem(F.avg_pool2d(image, MASK_STRIDE)))  # [1,8,Hm,Wm]
        cls_map = self.cls_head(feat)  # [1,C,Hm,Wm]
        cell_scores = F.sigmoid(F.adaptive_avg_pool2d(cls_map, GRID))  # [1,C,G,G]
        cell_scores = paddle.reshape(paddle.transpose(cell_scores, [0, 2, 3, 1]), [GRID * GRID, self.num_classes])
        score = paddle.max(cell_scores, axis=1, keepdim=True)
        cls = paddle.cast(paddle.argmax(cell_scores, axis=1, keepdim=True), "float32")
        # boxes from input pixels to original pixels: divide by [w_scale, h_scale, w_scale, h_scale]
        scale_xyxy = paddle.concat([scale_factor[:, 1:2], scale_factor[:, 0:1]] * 2, axis=1)
        ori_wh = paddle.concat([im_shape[:, 1:2] / scale_factor[:, 1:2], im_shape[:, 0:1] / scale_factor[:, 0:1]], axis=1)
        boxes = paddle.minimum(self.cell_boxes / scale_xyxy, paddle.concat([ori_wh, ori_wh], axis=1))
        bbox = paddle.concat([cls, score, boxes], axis=1)  # [K,6]
        bbox_num = paddle.full([1], GRID * GRID, dtype="int32")
        masks = F.sigmoid(self.mask_head(feat))[0] * self.windows  # [K,Hm,Wm] probabilities
        if self.graph == "edge":
            return bbox, bbox_num, masks
        # reference: up to the input size, then to the original size, 0/1 (PaddleDetection's layout)
        masks = F.interpolate(masks.unsqueeze(0), size=list(self.input_size), mode="bilinear", align_corners=False)
        ori_hw = paddle.cast(paddle.round(im_shape / scale_factor), "int32")
        masks = F.interpolate(masks, size=[ori_hw[0, 0:1], ori_hw[0, 1:2]], mode="bilinear", align_corners=False)
        # a [1]-shaped threshold: a Python scalar becomes a 0-D fill_constant that Lite cannot run
        return bbox, bbox_num, paddle.cast(masks[0] > paddle.full([1], 0.5, "float32"), "int32")


def standin_spec(graph: str, input_size: Tuple[int, int], labels: List[str], interp: int = 1) -> ModelSpec:
    layout = MaskLayout("lowres", MASK_STRIDE, 0.5) if graph == "edge" else None
    return detection_spec("StandIn-Seg", "StandIn", labels, input_size, layout, interp=interp)


def export_standin(
    out_dir: Path, graph: str = "edge", num_classes: int = 3, input_size: Tuple[int, int] = (64, 64),
    seed: int = 0, labels: Optional[List[str]] = None,
) -> Path:
    """Build the stand-in with seeded weights and save it as a legacy inference directory."""
    paddle.seed(seed)
    layer = StandInSeg(num_classes, input_size, graph)
    labels = labels or [f"class{i}" for i in range(num_classes)]
    return save_inference_dir(layer, Path(out_dir), standin_spec(graph, input_size, labels), input_size)


def standin_bundle(root: Path, graph: str = "edge", input_size: Tuple[int, int] = (64, 64),
                   target: str = "x86") -> Tuple[Path, Path]:
    """Export the stand-in, convert it with opt and bundle it: (inference directory, bundle directory)."""
    from export.bundle import write_bundle
    from export.optimize import optimize

    root = Path(root)
    model_dir = export_standin(root / f"standin_{graph}_{input_size[0]}", graph=graph, input_size=input_size)
    spec = ModelSpec.from_inference_yml(model_dir / "inference.yml")
    nb = optimize(model_dir, root / f"standin_{graph}_{input_size[0]}_{target}", target=target)
    h, w = input_size
    bundle = write_bundle(root / "bundles", f"standin-{graph}-{input_size[0]}-{target}", nb, spec,
                          [[1, 2], [1, 3, h, w], [1, 2]], extra={"target": target})
    return model_dir, bundle
