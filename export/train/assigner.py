"""Task-aligned label assignment (TOOD), as PP-YOLOE trains with it, in numpy.

For every ground-truth box: the anchors whose centre lies inside it are ranked by the alignment
metric score**alpha * IoU**beta (score = predicted probability of the box's class, IoU between the
predicted box and the ground truth); the top k become its positives. An anchor claimed by several
boxes keeps the one it overlaps most. The soft class target of a positive is its alignment metric,
rescaled per box so that the box's best anchor gets that anchor's IoU. Runs without gradients.
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np

EPS = 1e-9


class Assignment(NamedTuple):
    labels: np.ndarray  # [B, L] int64 class index; `num_classes` = background
    boxes: np.ndarray  # [B, L, 4] x1y1x2y2 of the assigned ground truth (zeros for background)
    scores: np.ndarray  # [B, L, C] soft one-hot targets for the classifier
    gt_index: np.ndarray  # [B, L] index of the assigned ground truth in its image (0 for background)
    positive: np.ndarray  # [B, L] bool


def box_iou(boxes_a: np.ndarray, boxes_b: np.ndarray) -> np.ndarray:
    """IoU of every pair: [..., n, 4] x [..., m, 4] -> [..., n, m]."""
    a = boxes_a[..., :, None, :]
    b = boxes_b[..., None, :, :]
    inter_w = np.clip(np.minimum(a[..., 2], b[..., 2]) - np.maximum(a[..., 0], b[..., 0]), 0, None)
    inter_h = np.clip(np.minimum(a[..., 3], b[..., 3]) - np.maximum(a[..., 1], b[..., 1]), 0, None)
    inter = inter_w * inter_h
    area_a = np.clip(a[..., 2] - a[..., 0], 0, None) * np.clip(a[..., 3] - a[..., 1], 0, None)
    area_b = np.clip(b[..., 2] - b[..., 0], 0, None) * np.clip(b[..., 3] - b[..., 1], 0, None)
    return inter / (area_a + area_b - inter + EPS)


def assign(pred_scores: np.ndarray, pred_boxes: np.ndarray, anchor_points: np.ndarray, gt_labels: np.ndarray,
           gt_boxes: np.ndarray, gt_valid: np.ndarray, num_classes: int, topk: int = 13, alpha: float = 1.0,
           beta: float = 6.0) -> Assignment:
    """Assign anchors to ground truth.

    pred_scores [B, L, C] probabilities; pred_boxes [B, L, 4] and gt_boxes [B, n, 4] x1y1x2y2 in the
    same units as anchor_points [L, 2] (x, y); gt_labels [B, n] class indices; gt_valid [B, n] bool
    marks real boxes among the padding.
    """
    batch, num_anchors, _ = pred_scores.shape
    num_gt = gt_boxes.shape[1]
    labels = np.full((batch, num_anchors), num_classes, np.int64)
    boxes = np.zeros((batch, num_anchors, 4), np.float32)
    scores = np.zeros((batch, num_anchors, num_classes), np.float32)
    gt_index = np.zeros((batch, num_anchors), np.int64)
    if num_gt == 0:
        return Assignment(labels, boxes, scores, gt_index, labels != num_classes)

    ious = box_iou(gt_boxes, pred_boxes)  # [B, n, L]
    label_index = np.clip(gt_labels, 0, num_classes - 1)
    cls_scores = np.take_along_axis(pred_scores.transpose(0, 2, 1), label_index[:, :, None], axis=1)  # [B, n, L]
    metrics = cls_scores ** alpha * ious ** beta

    x, y = anchor_points[None, None, :, 0], anchor_points[None, None, :, 1]
    inside = np.minimum.reduce([x - gt_boxes[..., 0:1], y - gt_boxes[..., 1:2],
                                gt_boxes[..., 2:3] - x, gt_boxes[..., 3:4] - y]) > EPS  # [B, n, L]
    candidate_metrics = metrics * inside
    k = min(topk, num_anchors)
    top = np.argpartition(-candidate_metrics, k - 1, axis=-1)[..., :k]
    in_topk = np.zeros_like(inside)
    np.put_along_axis(in_topk, top, True, axis=-1)
    positive = in_topk & inside & gt_valid[:, :, None]  # [B, n, L]

    # An anchor claimed by several boxes goes to the one its prediction overlaps most.
    claimed = positive.sum(axis=1)  # [B, L]
    if claimed.max(initial=0) > 1:
        best = np.argmax(np.where(gt_valid[:, :, None], ious, -1.0), axis=1)  # [B, L]
        best_one_hot = np.arange(num_gt)[None, :, None] == best[:, None, :]
        positive = np.where((claimed > 1)[:, None, :], best_one_hot & positive.any(axis=1, keepdims=True),
                            positive)
    is_positive = positive.any(axis=1)  # [B, L]
    index = positive.argmax(axis=1)  # [B, L]

    batch_index = np.arange(batch)[:, None]
    labels = np.where(is_positive, gt_labels[batch_index, index], num_classes).astype(np.int64)
    boxes = np.where(is_positive[..., None], gt_boxes[batch_index, index], 0.0).astype(np.float32)

    metrics = metrics * positive
    max_metric = metrics.max(axis=-1, keepdims=True)
    max_iou = (ious * positive).max(axis=-1, keepdims=True)
    normalized = (metrics / (max_metric + EPS) * max_iou).max(axis=1)  # [B, L]
    rows, cols = np.nonzero(is_positive)
    scores[rows, cols, labels[rows, cols]] = normalized[rows, cols]
    gt_index = np.where(is_positive, index, 0).astype(np.int64)
    return Assignment(labels, boxes, scores, gt_index, is_positive)
