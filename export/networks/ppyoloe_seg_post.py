"""PP-YOLOE_seg post-processing as graph ops: PaddleDetection's ("reference") and ours ("edge").

reference: `PPYOLOEInsHead.post_process` of PaddleDetection: multiclass_nms3, then, when anything
    is kept, sigmoid(coeffs @ protos) resized to the input size, cropped by the box, resized to
    the original size, `> 0.5`; otherwise one all-zero row. The Python `if` becomes
    conditional_block / select_input in the saved program (Paddle Lite segfaults there).

edge: the same detections with no control flow and no zero-size tensors. A dummy candidate (an
    extra class holding one extra anchor with score 2.0) always survives NMS and, having the
    largest label, always comes last; `keep_top_k` grows by one so the real detections kept are
    exactly the reference's. The dummy row is zeroed and sliced off (kept when nothing else is,
    which reproduces the reference's one all-zero row). Masks stay at prototype resolution
    (`lowres` layout of edge/spec.py: probabilities at stride 4 of the model input).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Tuple

import paddle
import paddle.nn.functional as F
from paddle.base.layer_helper import LayerHelper

from .ppyoloe_seg_head import HeadOutputs


@dataclass(frozen=True)
class NMSConfig:
    score_threshold: float = 0.01
    nms_top_k: int = 1000
    keep_top_k: int = 300
    nms_threshold: float = 0.7
    normalized: bool = True  # PaddleDetection's MultiClassNMS default, kept by the seg config
    nms_eta: float = 1.0
    background_label: int = -1


DUMMY_SCORE = 2.0  # above any sigmoid score: the dummy is never pushed out by keep_top_k
MASK_THRESHOLD = 0.5


def multiclass_nms3(boxes, scores, cfg: NMSConfig, keep_top_k: int):
    """Paddle's multiclass_nms3 op: ([K, 6] rows, [K, 1] int32 flat indices, [1] int32 count)."""
    if paddle.in_dynamic_mode():
        return paddle._C_ops.multiclass_nms3(
            boxes, scores, None, cfg.score_threshold, cfg.nms_top_k, keep_top_k, cfg.nms_threshold,
            cfg.normalized, cfg.nms_eta, cfg.background_label,
        )
    helper = LayerHelper("multiclass_nms3")
    out = helper.create_variable_for_type_inference(dtype=boxes.dtype)
    index = helper.create_variable_for_type_inference(dtype="int32")
    count = helper.create_variable_for_type_inference(dtype="int32")
    helper.append_op(
        type="multiclass_nms3",
        inputs={"BBoxes": boxes, "Scores": scores},
        outputs={"Out": out, "Index": index, "NmsRoisNum": count},
        attrs={
            "background_label": cfg.background_label, "score_threshold": cfg.score_threshold,
            "nms_top_k": cfg.nms_top_k, "nms_threshold": cfg.nms_threshold, "keep_top_k": keep_top_k,
            "nms_eta": cfg.nms_eta, "normalized": cfg.normalized,
        },
    )
    for var in (out, index, count):
        var.stop_gradient = True
    return out, index, count


def _box_divisor(scale_factor):
    """[1, 6] divisor for rows [cls, score, x1, y1, x2, y2]: 1, 1, w, h, w, h scales."""
    sh, sw = scale_factor[:, 0:1], scale_factor[:, 1:2]
    return paddle.concat([paddle.full([1, 2], 1.0), sw, sh, sw, sh], axis=1)


def _prototype_masks(coeffs, protos):
    """sigmoid(coeffs [K, M] @ protos [M, h*w]) as [K, h, w]; matmul, never bmm."""
    _, m, mh, mw = protos.shape
    return F.sigmoid(paddle.matmul(coeffs, protos.reshape([m, mh * mw]))).reshape([-1, mh, mw])


def _flat_coeffs(mask_coeffs):
    """[1, M, A] -> [A, M], rows indexed like multiclass_nms3's Index output (batch 1)."""
    _, m, a = mask_coeffs.shape
    return mask_coeffs.transpose([0, 2, 1]).reshape([a, m])


def reference_post_process(outs: HeadOutputs, im_shape, scale_factor, input_size: Tuple[int, int],
                           cfg: NMSConfig):
    """bbox [N, 6] (original pixels), bbox_num [1] int32, mask [N, H, W] float32 0/1 at original size."""
    bbox, keep_idx, _ = multiclass_nms3(outs.boxes, outs.scores, cfg, cfg.keep_top_k)
    ori_hw = im_shape / scale_factor  # [1, 2]
    ori_hw_int = paddle.floor(ori_hw).astype("int32")
    bbox_num = paddle.shape(bbox)[0:1].astype("int32")  # int64 in dygraph, int32 in static programs
    if bbox_num.sum() > 0:
        coeffs = paddle.gather(_flat_coeffs(outs.mask_coeffs), keep_idx.reshape([-1]))
        masks = _prototype_masks(coeffs, outs.protos)
        masks = F.interpolate(masks.unsqueeze(0), size=list(input_size), mode="bilinear", align_corners=False)[0]
        masks = crop_masks_to_boxes(masks, bbox[:, 2:6], input_size)
        input_hw = paddle.concat([paddle.full([1, 1], float(input_size[0])), paddle.full([1, 1], float(input_size[1]))],
                                 axis=1)
        resized_hw = paddle.round(input_hw / scale_factor).astype("int32")
        masks = F.interpolate(masks.unsqueeze(0), size=[resized_hw[0, 0:1], resized_hw[0, 1:2]], mode="bilinear",
                              align_corners=False)
        masks = paddle.slice(masks, axes=[2, 3], starts=[0, 0], ends=[ori_hw_int[0, 0:1], ori_hw_int[0, 1:2]])
        mask = (masks[0] > MASK_THRESHOLD).astype("float32")
        bbox = bbox / _box_divisor(scale_factor)
    else:
        bbox_num = paddle.full([1], 1, "int32")
        bbox = paddle.zeros([1, 6], "float32")
        mask = paddle.zeros(paddle.concat([bbox_num, ori_hw_int[0]]), "float32")
    return bbox, bbox_num, mask


def crop_masks_to_boxes(masks, boxes, input_size: Tuple[int, int]):
    """Zero each [K, H, W] mask outside its box: pixel (c, r) is kept when x1 <= c < x2, y1 <= r < y2."""
    h, w = input_size
    x1, y1, x2, y2 = (boxes[:, i:i + 1].unsqueeze(-1) for i in range(4))  # [K, 1, 1]
    cols = paddle.arange(w, dtype="float32").reshape([1, 1, w])
    rows = paddle.arange(h, dtype="float32").reshape([1, h, 1])
    inside = ((cols >= x1).astype("float32") * (cols < x2).astype("float32")
              * (rows >= y1).astype("float32") * (rows < y2).astype("float32"))
    return masks * inside


def edge_post_process(outs: HeadOutputs, scale_factor, cfg: NMSConfig):
    """bbox [N, 6] (original pixels), bbox_num [1] int32, mask [N, h/4, w/4] probabilities (lowres)."""
    num_classes, anchors = int(outs.scores.shape[1]), int(outs.scores.shape[2])
    boxes = paddle.concat([outs.boxes, paddle.full([1, 1, 4], 0.0)], axis=1)  # [1, A+1, 4]
    scores = paddle.concat([outs.scores, paddle.full([1, num_classes, 1], 0.0)], axis=2)
    dummy_class = paddle.concat([paddle.full([1, 1, anchors], 0.0), paddle.full([1, 1, 1], DUMMY_SCORE)], axis=2)
    scores = paddle.concat([scores, dummy_class], axis=1)  # [1, C+1, A+1]
    rows, index, _ = multiclass_nms3(boxes, scores, cfg, cfg.keep_top_k + 1)  # [N+1, 6], [N+1, 1]

    # the dummy row is the only one labelled num_classes; zero it
    real = (rows[:, 0:1] < paddle.full([1, 1], num_classes - 0.5)).astype("float32")  # [N+1, 1]
    bbox = rows * real / _box_divisor(scale_factor)
    coeffs = paddle.concat([_flat_coeffs(outs.mask_coeffs), paddle.full([1, outs.mask_coeffs.shape[1]], 0.0)],
                           axis=0)
    coeffs = paddle.gather(coeffs, index.reshape([-1]))
    masks = _prototype_masks(coeffs, outs.protos) * real.reshape([-1, 1, 1])

    # N = rows - 1 real detections; keep max(N, 1) rows (count kept in float: Lite's int max is thin)
    kept = paddle.maximum(paddle.shape(rows)[0:1].astype("float32") - 1.0, paddle.full([1], 1.0))
    kept = kept.astype("int32")
    bbox = paddle.slice(bbox, axes=[0], starts=[0], ends=kept)
    masks = paddle.slice(masks, axes=[0], starts=[0], ends=kept)
    return bbox, kept, masks
