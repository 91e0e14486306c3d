"""SOLOv2's mask head after the network, computed once per grid cell instead of once per candidate.

PaddleDetection's exported SOLOv2 program ends with its `get_seg_single` + `MaskMatrixNMS`: every
(grid cell, class) pair scoring over 0.1 becomes a candidate, and each candidate gets its own
full feature-map mask (a 1x1 convolution with its cell's kernel, sigmoid, threshold, sums) before
the top 500 are kept. A candidate's mask depends only on its grid cell (the kernel is the cell's,
whatever the class), so the program computes the same mask up to 80 times: with many candidates
(3872 cells x 80 classes) that is 85 % of SOLOv2's time (tools/server_families/README.md, profile).
Here each cell's mask, area and soft-mask sum are computed once and the candidates index them;
the rest follows the program's arithmetic step by step (same float32 operations, same fake rows),
so the outputs are the program's four: ``bbox_num, cate_label, cate_score, segm``.
"""
from __future__ import annotations

from typing import List, Sequence

import numpy as np

# The exported head's constants (PaddleDetection's SOLOv2Head and MaskMatrixNMS, every SOLOv2 config)
NUM_GRIDS = (40, 36, 24, 16, 12)
STRIDES = (8, 8, 16, 32, 32)
SCORE_THRESHOLD, MASK_THRESHOLD = 0.1, 0.5
UPDATE_THRESHOLD, PRE_NMS_TOP_N, POST_NMS_TOP_N, SIGMA = 0.05, 500, 100, 2.0
CELLS = sum(g * g for g in NUM_GRIDS)


def _order(scores: np.ndarray, top: int) -> np.ndarray:
    """The program's sort: top-k when there are more than `top`, else a full descending sort."""
    k = min(top, scores.shape[0])
    return np.argsort(-scores, kind="stable")[:k]


def _cell_masks(kernels: np.ndarray, feature: np.ndarray):
    """Per cell (plus the program's fake all-ones kernel last): soft mask, mask (pixels over the mask
    threshold), area and the soft mask summed over the mask. Computed with Paddle's own kernels
    (convolution, sigmoid, sums), as the program computes them per candidate: numpy's matrix product
    and pairwise sums round differently, which moves mask edges and matrix-NMS decays by ~1e-4."""
    import paddle
    import paddle.nn.functional as F

    channels = feature.shape[1]
    kernels = np.concatenate([kernels.astype(np.float32, copy=False), np.ones((1, channels), np.float32)])
    with paddle.no_grad():
        x = paddle.to_tensor(np.ascontiguousarray(feature, dtype=np.float32))
        soft = F.sigmoid(paddle.squeeze(F.conv2d(x, paddle.to_tensor(kernels[:, :, None, None])), [0]))
        masks = paddle.cast(soft > MASK_THRESHOLD, "float32")
        area = paddle.sum(masks, axis=[1, 2])
        soft_sum = paddle.sum(paddle.cast(soft * masks, "float32"), axis=[1, 2])
        return soft.numpy(), masks.numpy().reshape(kernels.shape[0], -1), area.numpy(), soft_sum.numpy()


def solov2_head(cate: np.ndarray, kernels: np.ndarray, feature: np.ndarray,
                im_shape: Sequence[float], scale_factor: Sequence[float]) -> List[np.ndarray]:
    """`cate`: (3872, classes) point-NMSed category scores; `kernels`: (3872, C) per-cell kernels;
    `feature`: (1, C, h, w) mask feature; `im_shape`, `scale_factor`: the program's feeds (one image).
    Returns the program's outputs ``bbox_num`` (int32), ``cate_label`` (int64), ``cate_score``
    (float32), ``segm`` (uint8, n x H x W at the original image size)."""
    classes = cate.shape[1]
    soft, masks, area, soft_sum = _cell_masks(kernels, feature)
    cells = np.concatenate([np.repeat(np.asarray(STRIDES, np.float32), [g * g for g in NUM_GRIDS]), [0.0]]).astype(np.float32)

    # candidates in row-major order, then the program's fake one (cell 3872, class 0, score 0)
    cell_ids, labels = np.nonzero(cate > SCORE_THRESHOLD)
    cell_ids = np.append(cell_ids, cate.shape[0]).astype(np.int64)
    labels = np.append(labels, 0).astype(np.int64)
    cate_scores = np.append(cate.reshape(-1), np.float32(0))[cell_ids * classes + labels]
    last = cell_ids.shape[0] - 1
    keep = np.flatnonzero(area[cell_ids] > cells[cell_ids])
    rows = np.append(keep, last)  # the fake row again, whatever the filter said
    cate_scores = np.append(cate_scores, np.float32(0))[np.append(keep, last + 1)]
    cell_ids, labels = cell_ids[rows], labels[rows]
    with np.errstate(invalid="ignore", divide="ignore"):  # the fake row may have no pixels: 0/0, as the program
        scores = (cate_scores * (soft_sum[cell_ids] / area[cell_ids])).astype(np.float32)

    # Matrix NMS (gaussian) on the top 500
    top = _order(scores, PRE_NMS_TOP_N)
    cell_ids, labels, scores = cell_ids[top], labels[top], scores[top]
    m = masks[cell_ids]
    inter = m @ m.T
    sums = np.broadcast_to(area[cell_ids], inter.shape)
    with np.errstate(invalid="ignore", divide="ignore"):
        iou = np.triu(inter / (sums + sums.T - inter), 1)
    same = np.triu((labels[None, :] == labels[:, None]).astype(np.float32), 1)
    decay_iou = iou * same
    compensate = np.broadcast_to(decay_iou.max(axis=0), inter.shape).T
    decay = np.exp(np.float32(-SIGMA) * decay_iou ** 2) / np.exp(np.float32(-SIGMA) * compensate ** 2)
    scores = (scores * decay.min(axis=0)).astype(np.float32)
    kept = np.append(np.flatnonzero(scores >= UPDATE_THRESHOLD), scores.shape[0] - 1)
    cell_ids, labels, scores = cell_ids[kept], labels[kept], scores[kept]
    top = _order(scores, POST_NMS_TOP_N)
    cell_ids, labels, scores = cell_ids[top], labels[top], scores[top]

    # full-image masks: to 4x the feature map, crop to the resized image, to the original size (Paddle's
    # bilinear kernel, as the program: OpenCV's rounds differently and flips ~0.03 % of the pixels)
    import paddle
    import paddle.nn.functional as F

    fh, fw = feature.shape[2:]
    h, w = int(im_shape[0]), int(im_shape[1])
    # the program divides both sides by the vertical scale (PaddleDetection: `im_shape[:2] / scale_factor`
    # with scale_factor already reduced to its first element)
    oh, ow = (int(v) for v in (np.asarray(im_shape[:2], np.float32) / np.float32(scale_factor[0]) + np.float32(0.5)))
    with paddle.no_grad():
        x = paddle.to_tensor(soft[cell_ids][None])
        x = F.interpolate(x, size=[fh * 4, fw * 4], mode="bilinear", align_corners=False, align_mode=0)[:, :, :h, :w]
        segm = (F.interpolate(x, size=[oh, ow], mode="bilinear", align_corners=False, align_mode=0)[0] > MASK_THRESHOLD).numpy()
    return [np.asarray(len(cell_ids), np.int32), labels, scores, segm.astype(np.uint8)]
