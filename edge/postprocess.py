"""Post-processing identical to PaddleX's instance segmentation, for both mask layouts.

PaddleX: keep rows with ``score > threshold`` (strict) and ``cls > -1``, clip boxes to the
image, crop each mask to its box ``mask[round(y1):round(y2), round(x1):round(x2)]``.

Where we differ on purpose (see docs/REFERENCE_DIFFERENCES.md):
- PaddleX removes empty boxes *after* cropping the masks, so boxes and masks can fall out of
  step; here a box and its mask are kept or dropped together.
- A crop is always exactly the rounded box size (PP-YOLOE_seg's masks can be 1 px narrower than
  the image; the missing column is filled with 0 instead of silently shrinking the crop).
- ``lowres`` masks (our edge graphs) are resized only for kept instances and only inside their box.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import List, Sequence, Tuple

import cv2
import numpy as np

from .spec import MaskLayout, ModelSpec


@dataclass
class Detections:
    """Kept instances of one image: PaddleX's `boxes` and box-cropped `masks` (uint8 0/1)."""

    boxes: List[dict]
    masks: List[np.ndarray]


def crop_region(coordinate: Sequence[float]) -> Tuple[int, int, int, int]:
    """The integer crop [x1, y1, x2, y2) of a clipped box, rounded as PaddleX does."""
    x1, y1, x2, y2 = coordinate
    return round(x1), round(y1), round(x2), round(y2)


def crop_full_mask(mask: np.ndarray, region: Tuple[int, int, int, int]) -> np.ndarray:
    """Crop a full-size mask to `region`, zero-filling where the mask is smaller than the image."""
    x1, y1, x2, y2 = region
    out = np.zeros((y2 - y1, x2 - x1), dtype=np.uint8)
    part = mask[y1:y2, x1:x2]
    out[: part.shape[0], : part.shape[1]] = part != 0
    return out


def lowres_mask_in_box(
    mask: np.ndarray, region: Tuple[int, int, int, int], scale_factor: Sequence[float], layout: MaskLayout
) -> np.ndarray:
    """Resize a low-resolution mask inside one box only (see the `lowres` layout in spec.py).

    Original pixel x samples the mask at ``u = (x + 0.5) * scale_w / stride - 0.5``: one affine
    warp of the crop, bilinear, edges clamped like `align_corners=False` interpolation.
    """
    x1, y1, x2, y2 = region
    scale_h, scale_w = float(scale_factor[0]), float(scale_factor[1])
    ax, ay = scale_w / layout.stride, scale_h / layout.stride
    warp = np.array([[ax, 0.0, (x1 + 0.5) * ax - 0.5], [0.0, ay, (y1 + 0.5) * ay - 0.5]], dtype=np.float64)
    src = np.ascontiguousarray(mask, dtype=np.float32)
    sampled = cv2.warpAffine(
        src, warp, (x2 - x1, y2 - y1), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP, borderMode=cv2.BORDER_REPLICATE
    )
    return (sampled > layout.threshold).astype(np.uint8)


def postprocess(
    bbox: np.ndarray,
    bbox_num: np.ndarray,
    mask: np.ndarray,
    image_hw: Tuple[int, int],
    scale_factor: Sequence[float],
    spec: ModelSpec,
    threshold: float,
) -> Detections:
    """Turn the raw outputs of one image into PaddleX's kept boxes and box-cropped masks."""
    h, w = image_hw
    count = int(np.asarray(bbox_num).reshape(-1)[0]) if np.asarray(bbox_num).size else len(bbox)
    rows = np.asarray(bbox, dtype=np.float32).reshape(-1, 6)[:count]
    keep = np.flatnonzero((rows[:, 1] > threshold) & (rows[:, 0] > -1))
    boxes: List[dict] = []
    masks: List[np.ndarray] = []
    for i in keep:
        cls_id, score, x1, y1, x2, y2 = (float(v) for v in rows[i])
        coordinate = [max(0.0, x1), max(0.0, y1), min(float(w), x2), min(float(h), y2)]
        region = crop_region(coordinate)
        if region[2] <= region[0] or region[3] <= region[1]:
            continue  # no area: box and mask go together
        if spec.mask_layout.kind == "lowres":
            masks.append(lowres_mask_in_box(mask[i], region, scale_factor, spec.mask_layout))
        else:
            masks.append(crop_full_mask(mask[i], region))
        boxes.append({"cls_id": int(cls_id), "label": spec.label(int(cls_id)), "score": score, "coordinate": coordinate})
    return Detections(boxes, masks)
