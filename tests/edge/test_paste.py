"""edge/paste.py: the box-local paste gives what PaddleDetection's MaskPostProcess gives with Paddle's
own `grid_sample` over the whole image (the op the exported RCNN programs run), pixel for pixel."""
from __future__ import annotations

import numpy as np
import paddle
import paddle.nn.functional as F
import pytest

from edge.paste import PastedMasks
from edge.postprocess import crop_full_mask, crop_region


def _paddle_paste(probs, boxes, h, w):
    """MaskPostProcess as exported: a full-image grid per box, grid_sample, >= 0.5."""
    x0, y0, x1, y1 = (paddle.to_tensor(boxes[:, i:i + 1]) for i in range(4))
    gx = (paddle.arange(0, w).astype("float32") + 0.5 - x0) / (x1 - x0) * 2 - 1
    gy = (paddle.arange(0, h).astype("float32") + 0.5 - y0) / (y1 - y0) * 2 - 1
    n = len(boxes)
    grid = paddle.stack([gx[:, None, :].expand([n, h, w]), gy[:, :, None].expand([n, h, w])], axis=3)
    out = F.grid_sample(paddle.to_tensor(probs[:, None]), grid, align_corners=False)[:, 0]
    return (out >= 0.5).numpy().astype(np.uint8)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_box_local_paste_equals_full_image_grid_sample(seed):
    rng = np.random.default_rng(seed)
    h, w, n = 61, 83, 12
    probs = rng.random((n, 28, 28), dtype=np.float32)
    x0, y0 = rng.uniform(-10, w - 5, n), rng.uniform(-10, h - 5, n)  # some boxes leave the image
    boxes = np.stack([x0, y0, x0 + rng.uniform(0.5, 50, n), y0 + rng.uniform(0.5, 40, n)], 1).astype(np.float32)
    full = _paddle_paste(probs, boxes, h, w)
    pasted = PastedMasks(probs, boxes, (h, w))
    np.testing.assert_array_equal(np.asarray(pasted), full)  # every pixel, including around the boxes
    for i, box in enumerate(boxes):  # and what post-processing reads: the clipped box's window
        region = crop_region([max(0.0, box[0]), max(0.0, box[1]), min(float(w), box[2]), min(float(h), box[3])])
        np.testing.assert_array_equal(crop_full_mask(pasted[i], region), crop_full_mask(full[i], region))


def test_window_beyond_the_image_is_zero_filled_by_the_crop():
    probs = np.ones((1, 28, 28), np.float32)
    pasted = PastedMasks(probs, np.float32([[0, 0, 10, 10]]), (8, 8))  # the program's mask is 8 x 8
    crop = crop_full_mask(pasted[0], (0, 0, 10, 10))
    assert crop.shape == (10, 10) and crop[:8, :8].all() and not crop[8:].any() and not crop[:, 8:].any()
