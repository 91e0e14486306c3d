"""PaddleDetection's mask paste for MaskRCNN / Cascade-MaskRCNN, computed only where a mask is read.

The exported RCNN programs end with `MaskPostProcess`: each box's 28x28 mask probabilities are
sampled over the whole (original-size) image with `grid_sample` (bilinear, `align_corners=False`,
zero padding) at the grid ``g = ((pixel + 0.5) - x0) / (x1 - x0) * 2 - 1``, and thresholded at
0.5: a full-image mask per box, ~10 % of the program's time (tools/server_families/README.md).
`PastedMasks` stands for those (N, H, W) masks: indexing one mask with a window (what
`crop_full_mask` does with the box) computes the paste in that window only, with the same float32
arithmetic, so a box costs in proportion to its own area.
"""
from __future__ import annotations

from typing import Tuple

import numpy as np

THRESHOLD = np.float32(0.5)  # MaskPostProcess.binary_thresh


class PastedMasks:
    """`probs` (N, h, w) mask probabilities, `boxes` (N, 4) x0, y0, x1, y1 in original-image pixels,
    `origin_hw` the program's original image size (floor(im_shape / scale_factor + 0.5))."""

    def __init__(self, probs: np.ndarray, boxes: np.ndarray, origin_hw: Tuple[int, int]):
        self.probs = np.asarray(probs, dtype=np.float32)
        self.boxes = np.asarray(boxes, dtype=np.float32).reshape(-1, 4)
        self.origin_hw = (int(origin_hw[0]), int(origin_hw[1]))
        self.shape = (len(self.probs), *self.origin_hw)

    def __len__(self) -> int:
        return len(self.probs)

    def __getitem__(self, i: int) -> "PastedMask":
        return PastedMask(self.probs[i], self.boxes[i], self.origin_hw)

    def __array__(self, dtype=None, copy=None):  # the whole thing, for a caller that wants every pixel
        full = np.stack([np.asarray(self[i]) for i in range(len(self))]) if len(self) else np.zeros(self.shape, np.uint8)
        return full if dtype is None else full.astype(dtype)


class PastedMask:
    """One box's full-image mask; ``mask[y1:y2, x1:x2]`` computes only that window (clipped to the image)."""

    def __init__(self, probs: np.ndarray, box: np.ndarray, origin_hw: Tuple[int, int]):
        self.probs, self.box, self.shape = probs, box, origin_hw

    def __getitem__(self, key) -> np.ndarray:
        ys, xs = key
        h, w = self.shape
        y1, y2, _ = ys.indices(h)
        x1, x2, _ = xs.indices(w)
        return paste_window(self.probs, self.box, max(y1, 0), max(y2, y1), max(x1, 0), max(x2, x1))

    def __array__(self, dtype=None, copy=None):
        full = paste_window(self.probs, self.box, 0, self.shape[0], 0, self.shape[1])
        return full if dtype is None else full.astype(dtype)


def _sample_axis(start: int, stop: int, lo: np.float32, hi: np.float32, size: int):
    """Grid coordinates of pixels [start, stop) along one axis, in mask cells (Paddle's float32 steps):
    g = (p + 0.5 - lo) / (hi - lo) * 2 - 1; u = (g + 1) * (size * 0.5) - 0.5; then the two neighbours,
    their weights and whether each is inside the mask (outside counts as 0: zero padding)."""
    one, two, half = np.float32(1), np.float32(2), np.float32(0.5)
    g = (np.arange(start, stop, dtype=np.float32) + half - lo) / (hi - lo) * two - one
    u = (g + one) * np.float32(size * 0.5) - half
    near = np.floor(u)
    far = near + one
    w_far, w_near = u - near, far - u  # weight of the far neighbour is the distance to the near one
    i_near, i_far = near.astype(np.int64), far.astype(np.int64)
    ok_near, ok_far = (i_near >= 0) & (i_near < size), (i_far >= 0) & (i_far < size)
    return np.clip(i_near, 0, size - 1), np.clip(i_far, 0, size - 1), w_near, w_far, ok_near, ok_far


def paste_window(probs: np.ndarray, box: np.ndarray, y1: int, y2: int, x1: int, x2: int) -> np.ndarray:
    """The pasted, thresholded mask (uint8 0/1) on rows [y1, y2) and columns [x1, x2) only."""
    if y2 <= y1 or x2 <= x1:
        return np.zeros((max(y2 - y1, 0), max(x2 - x1, 0)), np.uint8)
    bx0, by0, bx1, by1 = (np.float32(v) for v in box)
    mh, mw = probs.shape
    xw, xe, d_e, d_w, ok_w, ok_e = _sample_axis(x1, x2, bx0, bx1, mw)  # west / east neighbours
    yn, ys, d_s, d_n, ok_n, ok_s = _sample_axis(y1, y2, by0, by1, mh)  # north / south neighbours
    zero = np.float32(0)

    def corner(rows, cols, ok_r, ok_c):
        return np.where(ok_r[:, None] & ok_c[None, :], probs[rows[:, None], cols[None, :]], zero)

    # Paddle's bilinear sum, in its order: nw*e*s + ne*w*s + sw*e*n + se*w*n
    d_e, d_w, d_s, d_n = d_e[None, :], d_w[None, :], d_s[:, None], d_n[:, None]
    value = (corner(yn, xw, ok_n, ok_w) * d_e * d_s + corner(yn, xe, ok_n, ok_e) * d_w * d_s
             + corner(ys, xw, ok_s, ok_w) * d_e * d_n + corner(ys, xe, ok_s, ok_e) * d_w * d_n)
    return (value >= THRESHOLD).astype(np.uint8)
