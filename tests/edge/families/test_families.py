"""The server-only families against PaddleX 3.0.0's own predictor, from checked-in fixtures.

Each fixture (`<format>-<model>.npz`, written by tools/server_families/compare.py; README there) holds,
for three small COCO photos, what PaddleX's predictor fed to a PaddleDetection export of that family
(seeded random weights), the program's raw outputs and PaddleX's result. Here, without PaddleX or
PaddleDetection: our pre-processing gives PaddleX's feeds, and our post-processing of those raw
outputs gives PaddleX's result (same count and classes, scores <= 1e-4, coordinates <= 1e-2 px,
masks >= 99.9 % equal). The programs themselves were run by both sides in the harness: there
`edge predict --model DIR` and `edge serve` gave PaddleX's results (README).
"""
from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from edge.postprocess import postprocess_outputs
from edge.preprocess import Preprocessor
from edge.spec import ModelSpec

HERE = Path(__file__).resolve().parent
FIXTURES = sorted(HERE.glob("*.npz"))
TOL_SCORE, TOL_PX, TOL_MASK = 1e-4, 1e-2, 0.999


def _spec(data, tmp_path: Path) -> ModelSpec:
    path = tmp_path / "inference.yml"
    path.write_text(str(data["inference_yml"]))
    return ModelSpec.from_inference_yml(path)


def _images(data):
    return [cv2.imread(str(HERE / "images" / name)) for name in json.loads(str(data["images"]))]


def _outputs(data, k: int):
    outs, i = [], 0
    while f"{k}/out{i}" in data.files or f"{k}/out{i}_bits" in data.files:
        if f"{k}/out{i}_bits" in data.files:
            shape = tuple(data[f"{k}/out{i}_shape"])
            bits = np.unpackbits(data[f"{k}/out{i}_bits"], axis=-1, count=shape[-1])
            outs.append(bits.reshape(shape).astype(str(data[f"{k}/out{i}_dtype"])))
        else:
            outs.append(data[f"{k}/out{i}"])
        i += 1
    return outs


def _paddlex_result(data, k: int):
    boxes = json.loads(str(data[f"{k}/boxes"]))
    masks = []
    for i in range(len(boxes)):
        shape = tuple(data[f"{k}/mask{i}_shape"])
        masks.append(np.unpackbits(data[f"{k}/mask{i}_bits"], axis=-1, count=shape[-1]).reshape(shape))
    return boxes, masks


def _as_full(mask: np.ndarray, coordinate, hw) -> np.ndarray:
    """A box-cropped mask back in the image (SOLOv2: PaddleX gives full-image masks)."""
    full = np.zeros(hw, np.uint8)
    x1, y1 = int(coordinate[0]), int(coordinate[1])
    full[y1:y1 + mask.shape[0], x1:x1 + mask.shape[1]] = mask
    return full


def _levels(chw: np.ndarray, spec: ModelSpec) -> np.ndarray:
    alpha, beta = np.ones(3), np.zeros(3)
    for op in spec.preprocess:
        if op.get("type") == "NormalizeImage":
            scale = 1 / 255.0 if op.get("is_scale", True) else 1.0
            std = np.asarray(op.get("std", [1.0] * 3), np.float64)
            alpha, beta = scale / std, -np.asarray(op.get("mean", [0.0] * 3), np.float64) / std
    x = (chw.transpose(1, 2, 0).astype(np.float64) - beta) / alpha
    return np.clip(np.rint(x), 0, 255).astype(np.uint8)


@pytest.mark.parametrize("fixture", FIXTURES, ids=lambda p: p.stem)
def test_postprocess_gives_paddlex_result(fixture, tmp_path):
    data = np.load(fixture)
    spec = _spec(data, tmp_path)
    threshold = float(data["threshold"])
    total = 0
    for k, image in enumerate(_images(data)):
        ours = postprocess_outputs(_outputs(data, k), image.shape[:2], data[f"{k}/scale_factor"][0], spec, threshold)
        boxes, masks = _paddlex_result(data, k)
        if boxes and "class_id" in boxes[0]:  # SOLOv2: an empty mask has no box here (docs/DIFFERENCES.md)
            boxes, masks = [b for b, m in zip(boxes, masks) if m.any()], [m for m in masks if m.any()]
        assert len(ours.boxes) == len(boxes), f"image {k}: {len(ours.boxes)} instances, PaddleX {len(boxes)}"
        for ob, om, rb, rm in zip(ours.boxes, ours.masks, boxes, masks):
            assert ob["cls_id"] == rb.get("cls_id", rb.get("class_id"))
            assert abs(ob["score"] - rb["score"]) <= TOL_SCORE
            if rb.get("coordinate"):  # boxes: box-cropped masks of the rounded box
                assert np.max(np.abs(np.subtract(ob["coordinate"], rb["coordinate"]))) <= TOL_PX
                assert om.shape == rm.shape
                assert om.size == 0 or np.mean(om == rm) >= TOL_MASK
            else:  # SOLOv2: PaddleX's full-image mask; ours is cropped to the mask's tight box
                assert np.mean(_as_full(om, ob["coordinate"], image.shape[:2]) == rm) >= TOL_MASK
                assert np.array_equal(_as_full(om, ob["coordinate"], image.shape[:2]), rm)
        total += len(boxes)
    assert total > 0, "a fixture without instances compares nothing"


@pytest.mark.parametrize("fixture", [p for p in FIXTURES if p.name.startswith("legacy")], ids=lambda p: p.stem)
def test_preprocess_gives_paddlex_feeds(fixture, tmp_path):
    """Inference directories resize as PaddleX does (OpenCV's default dispatch, docs/DIFFERENCES.md)."""
    data = np.load(fixture)
    spec = _spec(data, tmp_path)
    image = _images(data)[0]
    feeds = Preprocessor(spec, portable_resize=False)(image)
    im_shape, img, scale = (feeds[n] for n in spec.input_names)
    np.testing.assert_array_equal(im_shape, data["0/im_shape"])
    np.testing.assert_array_equal(scale, data["0/scale_factor"])
    expected = cv2.imdecode(data["0/image_levels_png"], cv2.IMREAD_UNCHANGED)
    got = _levels(img[0], spec)
    assert got.shape == expected.shape
    # equal on an x86 host with OpenCV's IPP (PaddleX's and CI's); other hosts round .5 ties their way
    share = float(np.mean(got == expected))  # the portable resize (IPP off) gives ~98 % here
    assert share >= (1.0 if cv2.ipp.useIPP() else 0.97), share
