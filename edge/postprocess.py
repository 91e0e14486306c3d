"""Post-processing identical to PaddleX's instance segmentation, for both mask layouts.

PaddleX: keep rows with ``score > threshold`` (strict) and ``cls > -1``, clip boxes to the
image, crop each mask to its box ``mask[round(y1):round(y2), round(x1):round(x2)]``.

Where we differ on purpose (see docs/DIFFERENCES.md):
- PaddleX removes empty boxes *after* cropping the masks, so boxes and masks can fall out of
  step; here a box and its mask are kept or dropped together.
- A crop is always exactly the rounded box size (PP-YOLOE_seg's masks can be 1 px narrower than
  the image; the missing column is filled with 0 instead of silently shrinking the crop).
- ``lowres`` masks (our edge graphs) are resized only for kept instances and only inside their box.
- SOLOv2 (outputs ``bbox_num, cate_label, cate_score, segm``: no boxes) keeps ``score >= threshold`` as
  PaddleX does, but its rows get a ``cls_id`` and a ``coordinate`` (the tight box around the mask) and
  its masks are cropped to that box like every other model's; PaddleX gives ``class_id``, no
  coordinate and full-image masks, on which its own serving and drawing fail. An empty mask has no
  box and is dropped.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import List, Sequence, Tuple

import numpy as np

from .errors import BackendError
from .spec import MaskLayout, ModelSpec


@dataclass
class Detections:
    """Kept instances of one image: PaddleX's `boxes` and box-cropped `masks` (uint8 0/1)."""

    boxes: List[dict]
    masks: List[np.ndarray]
    computed_by: str = ""  # set by the predictor: "lite", "paddle" or "remote:<url>"


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


def _axis_weights(start: int, stop: int, scale: float, stride: int, size: int):
    """Source indices and weights along one axis: u = (x + 0.5) * scale / stride - 0.5, clamped."""
    u = (np.arange(start, stop, dtype=np.float64) + 0.5) * (scale / stride) - 0.5
    u = np.clip(u, 0.0, size - 1)
    lo = np.floor(u).astype(np.intp)
    hi = np.minimum(lo + 1, size - 1)
    return lo, hi, (u - lo).astype(np.float32)


def lowres_mask_in_box(
    mask: np.ndarray, region: Tuple[int, int, int, int], scale_factor: Sequence[float], layout: MaskLayout
) -> np.ndarray:
    """Resize a low-resolution mask inside one box only (see the `lowres` layout in spec.py).

    Bilinear sampling is separable here (u depends on x only, v on y only), so it is done exactly
    in float with two gathers per axis; edges are clamped like `align_corners=False` interpolation.
    """
    x1, y1, x2, y2 = region
    hm, wm = mask.shape
    v0, v1, fv = _axis_weights(y1, y2, float(scale_factor[0]), layout.stride, hm)
    u0, u1, fu = _axis_weights(x1, x2, float(scale_factor[1]), layout.stride, wm)
    src = np.asarray(mask, dtype=np.float32)
    top, bottom = src[v0], src[v1]  # rows first: at most (y2 - y1) x wm
    fu, fv = fu[None, :], fv[:, None]
    row_top = top[:, u0] * (1 - fu) + top[:, u1] * fu
    row_bottom = bottom[:, u0] * (1 - fu) + bottom[:, u1] * fu
    return ((row_top * (1 - fv) + row_bottom * fv) > layout.threshold).astype(np.uint8)


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
        if coordinate[2] <= coordinate[0] or coordinate[3] <= coordinate[1]:
            continue  # no area after clipping (PaddleX's rule): box and mask go together
        region = crop_region(coordinate)  # may be 0 px wide or high (a box under 1 px): an empty mask, as PaddleX
        if spec.mask_layout.kind == "lowres":
            masks.append(lowres_mask_in_box(mask[i], region, scale_factor, spec.mask_layout))
        else:
            masks.append(crop_full_mask(mask[i], region))
        boxes.append({"cls_id": int(cls_id), "label": spec.label(int(cls_id)), "score": score, "coordinate": coordinate})
    return Detections(boxes, masks)


def solov2_postprocess(
    labels: np.ndarray, scores: np.ndarray, segm: np.ndarray, spec: ModelSpec, threshold: float
) -> Detections:
    """SOLOv2's outputs (no boxes): rows with ``score >= threshold`` (PaddleX's rule for it), each
    given the tight box around its full-image mask and the mask cropped to that box."""
    boxes: List[dict] = []
    masks: List[np.ndarray] = []
    labels, scores = np.asarray(labels).reshape(-1), np.asarray(scores, dtype=np.float32).reshape(-1)
    for i in np.flatnonzero(scores >= threshold):
        mask = np.asarray(segm[i]) != 0
        rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
        if rows.size == 0:
            continue  # an empty mask has no box
        y1, y2, x1, x2 = int(rows[0]), int(rows[-1]) + 1, int(cols[0]), int(cols[-1]) + 1
        cls_id = int(labels[i])
        boxes.append({"cls_id": cls_id, "label": spec.label(cls_id), "score": float(scores[i]),
                      "coordinate": [float(x1), float(y1), float(x2), float(y2)]})
        masks.append(mask[y1:y2, x1:x2].astype(np.uint8))
    return Detections(boxes, masks)


def postprocess_outputs(
    outputs: Sequence[np.ndarray],
    image_hw: Tuple[int, int],
    scale_factor: Sequence[float],
    spec: ModelSpec,
    threshold: float,
) -> Detections:
    """The program's outputs, in program order, to detections: ``bbox, bbox_num, mask`` (every
    exported detector and our edge graphs) or, for ``arch: SOLOv2``, ``bbox_num, cate_label, cate_score, segm``."""
    if spec.arch == "SOLOv2":
        if len(outputs) != 4:
            raise BackendError(f"a SOLOv2 program has 4 outputs (bbox_num, cate_label, cate_score, segm); got {len(outputs)}")
        _, labels, scores, segm = outputs
        return solov2_postprocess(labels, scores, segm, spec, threshold)
    bbox, bbox_num, mask = outputs[:3]
    return postprocess(bbox, bbox_num, mask, image_hw, scale_factor, spec, threshold)
