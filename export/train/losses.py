"""PP-YOLOE_seg training losses: varifocal classification, GIoU + DFL boxes, box-cropped mask BCE.

Given the head's raw outputs and a task-aligned `Assignment`, the total is
  1.0 * varifocal + 2.5 * GIoU + 0.5 * DFL + 2.5 * mask,
each normalised by the sum of the soft class targets, as PaddleDetection's PPYOLOEInsHead does.
Box terms work in units of each anchor's stride; the mask term is a per-pixel BCE of
coefficients @ prototypes against the ground-truth mask at prototype resolution, counted only
inside the ground-truth box and averaged over the box area.
"""
from __future__ import annotations

from typing import Dict

import numpy as np
import paddle
import paddle.nn.functional as F

from export.networks.ppyoloe_seg_demo import RawHeadOutputs
from export.train.assigner import Assignment

LOSS_WEIGHTS = {"cls": 1.0, "iou": 2.5, "dfl": 0.5, "mask": 2.5}


def varifocal_loss(logits: paddle.Tensor, target_scores: paddle.Tensor, one_hot: paddle.Tensor,
                   alpha: float = 0.75, gamma: float = 2.0) -> paddle.Tensor:
    """Sum over anchors and classes; negatives are down-weighted by alpha * p**gamma."""
    prob = F.sigmoid(logits)
    weight = alpha * prob.pow(gamma) * (1 - one_hot) + target_scores * one_hot
    bce = F.binary_cross_entropy_with_logits(logits, target_scores, reduction="none")
    return (bce * weight).sum()


def giou_loss(pred: paddle.Tensor, target: paddle.Tensor, eps: float = 1e-10) -> paddle.Tensor:
    """1 - GIoU per row of x1y1x2y2 boxes, shape [N]."""
    px1, py1, px2, py2 = paddle.unbind(pred, axis=-1)
    tx1, ty1, tx2, ty2 = paddle.unbind(target, axis=-1)
    inter = (paddle.minimum(px2, tx2) - paddle.maximum(px1, tx1)).clip(min=0) * \
            (paddle.minimum(py2, ty2) - paddle.maximum(py1, ty1)).clip(min=0)
    union = (px2 - px1) * (py2 - py1) + (tx2 - tx1) * (ty2 - ty1) - inter + eps
    iou = inter / union
    hull = (paddle.maximum(px2, tx2) - paddle.minimum(px1, tx1)) * \
           (paddle.maximum(py2, ty2) - paddle.minimum(py1, ty1)) + eps
    return 1 - (iou - (hull - union) / hull)


def dfl_targets(distances: np.ndarray, reg_max: int) -> np.ndarray:
    """Two-bin soft targets [N, 4, reg_max + 1] for continuous distances [N, 4] in stride units."""
    distances = np.clip(distances, 0, reg_max - 0.01)
    left = np.floor(distances).astype(np.int64)
    weight_right = distances - left
    targets = np.zeros(distances.shape + (reg_max + 1,), np.float32)
    np.put_along_axis(targets, left[..., None], (1 - weight_right)[..., None], axis=-1)
    np.put_along_axis(targets, left[..., None] + 1, weight_right[..., None], axis=-1)
    return targets


def decode_distances(reg_logits: paddle.Tensor) -> paddle.Tensor:
    """Expected left/top/right/bottom distance (stride units) from per-side bin logits."""
    reg_max = reg_logits.shape[-1] - 1
    bins = paddle.arange(reg_max + 1, dtype="float32")
    return (F.softmax(reg_logits, axis=-1) * bins).sum(-1)


def mask_targets_in_boxes(boxes: np.ndarray, height: int, width: int) -> np.ndarray:
    """[N, height*width] 0/1 windows of boxes given in prototype pixels (as PaddleDetection crops)."""
    cols = np.arange(width, dtype=np.float32)[None, None, :]
    rows = np.arange(height, dtype=np.float32)[None, :, None]
    x1, y1, x2, y2 = (boxes[:, i, None, None] for i in range(4))
    inside = (cols >= x1) & (cols < x2) & (rows >= y1) & (rows < y2)
    return inside.reshape(len(boxes), height * width).astype(np.float32)


def compute_losses(outputs: RawHeadOutputs, assignment: Assignment, anchor_points: np.ndarray,
                   strides: np.ndarray, gt_masks: np.ndarray, input_hw: "tuple[int, int]") -> Dict[str, paddle.Tensor]:
    """Loss terms and their weighted `total` for one batch.

    anchor_points [L, 2] and strides [L] in input pixels; gt_masks [B, n, Hm, Wm] float in [0, 1] at
    prototype resolution, indexed like the ground truth the assignment refers to.
    """
    batch, num_anchors, num_classes = outputs.cls_logits.shape
    reg_max = outputs.reg_logits.shape[-1] - 1
    target_scores = paddle.to_tensor(assignment.scores)
    one_hot = paddle.to_tensor((np.arange(num_classes)[None, None, :] == assignment.labels[..., None])
                               .astype(np.float32))
    normalizer = max(float(assignment.scores.sum()), 1.0)
    losses = {"cls": varifocal_loss(outputs.cls_logits, target_scores, one_hot) / normalizer}

    rows, cols = np.nonzero(assignment.positive)
    if len(rows) == 0:  # keep every branch in the graph so the optimiser sees the same parameters
        zero = (outputs.reg_logits.sum() + outputs.mask_coeffs.sum() + outputs.protos.sum()) * 0.0
        losses.update(iou=zero, dfl=zero, mask=zero)
    else:
        flat = paddle.to_tensor(rows * num_anchors + cols)
        weight = paddle.to_tensor(assignment.scores[rows, cols].sum(-1))
        stride = strides[cols][:, None].astype(np.float32)
        anchor_s = anchor_points[cols] / stride  # anchors and boxes in stride units
        target_s = assignment.boxes[rows, cols] / stride

        reg = paddle.gather(outputs.reg_logits.reshape([batch * num_anchors, 4, reg_max + 1]), flat)
        dist = decode_distances(reg)
        anchor_t = paddle.to_tensor(anchor_s.astype(np.float32))
        pred_s = paddle.concat([anchor_t - dist[:, :2], anchor_t + dist[:, 2:]], axis=-1)
        losses["iou"] = (giou_loss(pred_s, paddle.to_tensor(target_s)) * weight).sum() / normalizer

        target_dist = np.concatenate([anchor_s - target_s[:, :2], target_s[:, 2:] - anchor_s], axis=1)
        soft = paddle.to_tensor(dfl_targets(target_dist, reg_max))
        dfl = -(soft * F.log_softmax(reg, axis=-1)).sum(-1).mean(-1)
        losses["dfl"] = (dfl * weight).sum() / normalizer
        losses["mask"] = _mask_loss(outputs, assignment, rows, cols, flat, gt_masks, input_hw) / normalizer

    losses["total"] = sum(LOSS_WEIGHTS[name] * losses[name] for name in LOSS_WEIGHTS)
    return losses


def _mask_loss(outputs: RawHeadOutputs, assignment: Assignment, rows: np.ndarray, cols: np.ndarray,
               flat: paddle.Tensor, gt_masks: np.ndarray, input_hw: "tuple[int, int]") -> paddle.Tensor:
    batch, num_protos, mask_h, mask_w = outputs.protos.shape
    coeffs = paddle.gather(outputs.mask_coeffs.reshape([-1, num_protos]), flat)  # [P, M]
    gt_index = assignment.gt_index[rows, cols]
    target = gt_masks[rows, gt_index].reshape(len(rows), mask_h * mask_w)
    scale = np.array([mask_w / input_hw[1], mask_h / input_hw[0]] * 2, np.float32)
    boxes = assignment.boxes[rows, cols] * scale
    window = mask_targets_in_boxes(boxes, mask_h, mask_w)
    box_area = np.clip((boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1]), 1.0, None)

    total = None
    protos = outputs.protos.reshape([batch, num_protos, mask_h * mask_w])
    for image in np.unique(rows):  # one matmul per image keeps memory at [P_image, Hm*Wm]
        pick = np.nonzero(rows == image)[0]
        logits = paddle.matmul(paddle.gather(coeffs, paddle.to_tensor(pick)), protos[int(image)])
        bce = F.binary_cross_entropy_with_logits(logits, paddle.to_tensor(target[pick]), reduction="none")
        per_instance = (bce * paddle.to_tensor(window[pick])).sum(-1) / paddle.to_tensor(box_area[pick])
        total = per_instance.sum() if total is None else total + per_instance.sum()
    return total
