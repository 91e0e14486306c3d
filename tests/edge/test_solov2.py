"""SOLOv2's head per grid cell (edge/solov2.py) gives what the exported program computes per candidate.

The reference below is the program's post-network part as exported (PaddleDetection's SOLOv2Head
`get_seg_single` + MaskMatrixNMS, read op by op from the legacy program): one mask per candidate,
fake rows included. Small random inputs (3 classes, 8 channels, a 6 x 7 mask feature), scores spread
so that some cells have several classes and there are more than 500 candidates (the top-k path).
"""
from __future__ import annotations

import numpy as np
import paddle
import paddle.nn.functional as F
import pytest

from edge.solov2 import CELLS, NUM_GRIDS, STRIDES, solov2_head


def _program_head(cate, kernels, feature, im_shape, scale_factor):
    """Per candidate, in the program's order (the thing edge/solov2.py must reproduce)."""
    classes, channels = cate.shape[1], kernels.shape[1]
    inds = np.argwhere(cate > 0.1)
    inds = np.concatenate([inds, [[CELLS, 0]]])
    kern = np.concatenate([kernels, np.ones((1, channels), np.float32)])[inds[:, 0]]
    cate_scores = np.append(cate.reshape(-1), np.float32(0))[inds[:, 0] * classes + inds[:, 1]]
    strides = np.concatenate([np.repeat(STRIDES, [g * g for g in NUM_GRIDS]), [0]]).astype(np.float32)[inds[:, 0]]
    seg = F.sigmoid(paddle.squeeze(F.conv2d(paddle.to_tensor(feature), paddle.to_tensor(kern[:, :, None, None])), [0]))
    masks = paddle.cast(seg > 0.5, "float32")
    area = paddle.sum(masks, axis=[1, 2]).numpy()
    keep = np.flatnonzero(area > strides)
    n = area.shape[0]
    other, score_idx = np.append(keep, n - 1), np.append(keep, n)
    cate_scores = np.append(cate_scores, np.float32(0))[score_idx]
    seg, masks, area, labels = seg.numpy()[other], masks.numpy()[other], area[other], inds[:, 1][other]
    with np.errstate(invalid="ignore", divide="ignore"):
        scores = cate_scores * (paddle.sum(paddle.to_tensor(seg * masks), axis=[1, 2]).numpy() / area)
    order = np.argsort(-scores, kind="stable")[:500]
    seg, masks, area, labels, scores = seg[order], masks[order], area[order], labels[order], scores[order]
    flat = masks.reshape(len(order), -1)
    inter = flat @ flat.T
    union = area[None, :] + area[:, None] - inter
    with np.errstate(invalid="ignore", divide="ignore"):
        decay_iou = np.triu(inter / union, 1) * np.triu((labels[None, :] == labels[:, None]).astype(np.float32), 1)
    compensate = decay_iou.max(axis=0)[:, None]
    scores = scores * (np.exp(-2.0 * decay_iou ** 2) / np.exp(-2.0 * compensate ** 2)).min(axis=0)
    kept = np.append(np.flatnonzero(scores >= 0.05), len(scores) - 1)
    seg, labels, scores = seg[kept], labels[kept], scores[kept]
    order = np.argsort(-scores, kind="stable")[:100]
    seg, labels, scores = seg[order], labels[order], scores[order]
    fh, fw = feature.shape[2:]
    oh, ow = (int(v) for v in (np.asarray(im_shape, np.float32) / np.float32(scale_factor[0]) + np.float32(0.5)))
    up = F.interpolate(paddle.to_tensor(seg[None]), size=[fh * 4, fw * 4], mode="bilinear", align_corners=False)
    up = up[:, :, :int(im_shape[0]), :int(im_shape[1])]
    segm = (F.interpolate(up, size=[oh, ow], mode="bilinear", align_corners=False)[0] > 0.5).numpy().astype(np.uint8)
    return len(order), labels, scores.astype(np.float32), segm


@pytest.mark.parametrize("seed", [0, 1])
def test_per_cell_head_gives_the_programs_outputs(seed):
    rng = np.random.default_rng(seed)
    classes, channels = 3, 8
    cate = (rng.random((CELLS, classes), dtype=np.float32) * 0.118).astype(np.float32)  # ~15 % over 0.1: > 500
    kernels = rng.normal(0, 1, (CELLS, channels)).astype(np.float32)
    feature = rng.normal(0, 1, (1, channels, 6, 7)).astype(np.float32)
    im_shape, scale_factor = np.float32([24, 26]), np.float32([0.5, 0.49])

    count, labels, scores, segm = solov2_head(cate, kernels, feature, im_shape, scale_factor)
    ref_count, ref_labels, ref_scores, ref_segm = _program_head(cate, kernels, feature, im_shape, scale_factor)

    assert int(count) == ref_count == len(labels) and ref_count > 10
    np.testing.assert_array_equal(labels, ref_labels)
    np.testing.assert_allclose(scores, ref_scores, rtol=0, atol=1e-6)
    assert segm.dtype == np.uint8 and segm.shape == (ref_count, 48, 52)  # 26 / 0.5 (the vertical scale, as the program) + 0.5
    np.testing.assert_array_equal(segm, ref_segm)


def test_no_candidate_gives_the_programs_fake_row():
    """Nothing over the score threshold: the program still returns its fake row (score 0); so do we."""
    cate = np.zeros((CELLS, 3), np.float32)
    count, labels, scores, segm = solov2_head(cate, np.zeros((CELLS, 4), np.float32), np.ones((1, 4, 5, 5), np.float32),
                                              np.float32([20, 20]), np.float32([1.0, 1.0]))
    assert int(count) == len(scores) == len(segm) and np.all(scores == 0)
