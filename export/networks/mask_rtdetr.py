"""Mask-RT-DETR-S as a Paddle network with PaddleDetection's parameter names, in two graphs.

PPHGNetV2 'S' -> MaskHybridEncoder -> MaskRTDETR transformer -> MaskDINOHead (last decoder layer)
-> DETRPostProcess (top `num_top_queries` of sigmoid(queries x classes), masks at stride 4).

`graph="reference"` reproduces PaddleDetection's exported outputs: `bbox` [100, 6] rows
[cls, score, x1, y1, x2, y2] in original-image pixels, `bbox_num` [1] int32, `mask` [100, H, W]
int32 0/1 at the original image size.

`graph="edge"` gives the same detections for Paddle Lite and small devices: no control flow, no
bmm, no BOOL constants, no 0-D tensors, no flatten ops, and masks left at low resolution: `mask`
is [100, Hin/4, Win/4] float *logits* over the model input (the `lowres` layout of edge/spec.py
with stride 4 and threshold 0.0). PaddleDetection resizes the stride-4 logits bilinearly to the
original size and thresholds sigmoid at 0.5, i.e. the logit at 0; resizing the logits per kept
box with that threshold gives the same pixels without 100 full-size masks in the graph.
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Mapping, Optional, Sequence, Tuple, Union

import paddle
import paddle.nn as nn
import paddle.nn.functional as F

from edge.errors import ConfigError
from edge.spec import MaskLayout, ModelSpec
from export.program import default_labels, detection_spec

from .hgnetv2 import PPHGNetV2
from .mask_hybrid_encoder import MaskHybridEncoder
from .mask_rtdetr_transformer import MaskRTDETRTransformer

logger = logging.getLogger(__name__)

GRAPHS = ("reference", "edge")
MASK_STRIDE = 4
EDGE_MASK_LAYOUT = MaskLayout(kind="lowres", stride=MASK_STRIDE, threshold=0.0)


def check_input_size(input_size: Sequence[int], num_queries: int = 300) -> Tuple[int, int]:
    """(h, w) as ints; both multiples of 32 with enough encoder tokens for the query selection."""
    try:
        h, w = (int(v) for v in input_size)
    except (TypeError, ValueError):
        raise ConfigError(f"input_size must be (height, width), got {input_size!r}") from None
    if h <= 0 or w <= 0 or h % 32 or w % 32:
        raise ConfigError(f"input_size {h}x{w}: Mask-RT-DETR needs a height and width that are positive multiples of 32")
    tokens = sum((h // s) * (w // s) for s in (8, 16, 32))
    if tokens < num_queries:
        raise ConfigError(
            f"input_size {h}x{w} gives {tokens} encoder tokens, fewer than the {num_queries} queries; use at least 128x128"
        )
    return h, w


class MaskRTDETR(nn.Layer):
    """forward(im_shape, image, scale_factor) -> (bbox, bbox_num, mask); see the module docstring."""

    def __init__(self, num_classes: int = 80, input_size: Sequence[int] = (640, 640), graph: str = "edge",
                 num_queries: int = 300, num_top_queries: int = 100, num_prototypes: int = 128,
                 mask_threshold: float = 0.5):
        super().__init__()
        if graph not in GRAPHS:
            raise ConfigError(f"unknown graph {graph!r}; choose one of {', '.join(GRAPHS)}")
        if int(num_classes) < 1:
            raise ConfigError(f"num_classes must be at least 1, got {num_classes!r}")
        if not 0 < num_top_queries <= num_queries * num_classes:
            raise ConfigError(f"num_top_queries must be in 1..{num_queries * num_classes}, got {num_top_queries}")
        self.input_size = check_input_size(input_size, num_queries)
        self.graph = graph
        self.num_classes = int(num_classes)
        self.num_queries = num_queries
        self.num_top_queries = num_top_queries
        self.mask_threshold = mask_threshold
        # attribute order = state_dict order of PaddleDetection's DETR: backbone, transformer, neck
        self.backbone = PPHGNetV2("S", return_idx=(0, 1, 2, 3))
        self.transformer = MaskRTDETRTransformer(
            num_classes=self.num_classes, num_queries=num_queries, input_size=self.input_size,
            num_prototypes=num_prototypes, edge=graph == "edge",
        )
        self.neck = MaskHybridEncoder(
            in_channels=self.backbone.out_channels, input_size=self.input_size, num_prototypes=num_prototypes,
        )

    def forward(self, im_shape, image, scale_factor):
        enc_feats, mask_feat = self.neck(self.backbone(image))
        boxes, logits, coeffs = self.transformer(enc_feats, mask_feat)
        if self.graph == "edge":
            return self._postprocess_edge(boxes, logits, coeffs, mask_feat, im_shape, scale_factor)
        return self._postprocess_reference(boxes, logits, coeffs, mask_feat, im_shape, scale_factor)

    # ------------------------------------------------------------------ DETRPostProcess
    def _postprocess_reference(self, boxes, logits, coeffs, mask_feat, im_shape, scale_factor):
        """ppdet DETRPostProcess (use_focal_loss, with_mask, bbox_decode_type 'origin') as written there."""
        k, nc = self.num_top_queries, self.num_classes
        _, num_protos, mh, mw = mask_feat.shape
        masks = paddle.bmm(coeffs, mask_feat.flatten(2)).reshape([1, self.num_queries, mh, mw])
        cxcy, wh = paddle.split(boxes, 2, axis=-1)
        bbox_pred = paddle.concat([cxcy - 0.5 * wh, cxcy + 0.5 * wh], axis=-1)
        origin_shape = paddle.floor(im_shape / scale_factor + 0.5)
        img_h, img_w = paddle.split(origin_shape, 2, axis=-1)
        bbox_pred = bbox_pred * origin_shape.flip(1).tile([1, 2]).unsqueeze(1)
        scores, index = paddle.topk(F.sigmoid(logits).flatten(1), k, axis=-1)
        labels = index % nc
        index = index // nc
        batch_ind = paddle.arange(end=1).unsqueeze(-1).tile([1, k])
        index = paddle.stack([batch_ind, index], axis=-1)
        bbox_pred = paddle.gather_nd(bbox_pred, index)
        masks = paddle.gather_nd(masks, index)
        masks = F.interpolate(masks, size=[img_h[0].astype("int32"), img_w[0].astype("int32")],
                              mode="bilinear", align_corners=False)
        mask_pred = (F.sigmoid(masks) > self.mask_threshold).astype("float32").flatten(0, 1).astype("int32")
        bbox = paddle.concat([labels.unsqueeze(-1).astype("float32"), scores.unsqueeze(-1), bbox_pred], axis=-1)
        bbox_num = paddle.to_tensor(k, dtype="int32").tile([1])
        return bbox.reshape([-1, 6]), bbox_num, mask_pred

    def _postprocess_edge(self, boxes, logits, coeffs, mask_feat, im_shape, scale_factor):
        """Same detections; masks only for the kept queries, as stride-4 logits over the model input."""
        k, nc, nq = self.num_top_queries, self.num_classes, self.num_queries
        _, num_protos, mh, mw = mask_feat.shape
        scores, index = paddle.topk(F.sigmoid(logits).reshape([1, nq * nc]), k, axis=-1)
        index = index.reshape([k])
        classes = paddle.full([1], nc, dtype=index.dtype)  # shape [1], never a 0-D constant
        labels = index % classes
        query = index // classes
        box = paddle.gather(boxes.reshape([nq, 4]), query)
        cxcy, wh = paddle.split(box, 2, axis=-1)
        xyxy = paddle.concat([cxcy - 0.5 * wh, cxcy + 0.5 * wh], axis=-1)
        origin_shape = paddle.floor(im_shape / scale_factor + 0.5)  # [1, 2] = (h, w)
        img_h, img_w = paddle.split(origin_shape, 2, axis=-1)
        xyxy = xyxy * paddle.concat([img_w, img_h, img_w, img_h], axis=-1)
        chosen = paddle.gather(coeffs.reshape([nq, num_protos]), query)
        masks = paddle.matmul(chosen, mask_feat.reshape([num_protos, mh * mw])).reshape([k, mh, mw])
        bbox = paddle.concat([labels.astype("float32").reshape([k, 1]), scores.reshape([k, 1]), xyxy], axis=-1)
        bbox_num = paddle.full([1], k, dtype="int32")
        return bbox, bbox_num, masks


def mask_rtdetr_spec(model_name: str, labels: Sequence[str], input_size: Tuple[int, int], graph: str) -> ModelSpec:
    """What inference.yml says about an exported Mask-RT-DETR (docs/REFERENCE.md: PaddleDetection's keys)."""
    return detection_spec(model_name, "DETR", labels, input_size, EDGE_MASK_LAYOUT if graph == "edge" else None)


def build_mask_rtdetr(num_classes: int = 80, input_size: Sequence[int] = (640, 640), graph: str = "edge",
                      weights: Union[None, str, Path, Mapping] = None) -> MaskRTDETR:
    """The network in eval mode, with `weights` (a .pdparams path or a state dict) loaded strictly."""
    net = MaskRTDETR(num_classes=num_classes, input_size=input_size, graph=graph)
    if weights is not None:
        from .weights import load_weights

        load_weights(net, weights, strict=True)
    net.eval()
    return net


def export_mask_rtdetr(out_dir: Union[str, Path], graph: str = "edge", num_classes: int = 80,
                       labels: Optional[Sequence[str]] = None, input_size: Sequence[int] = (640, 640),
                       weights: Union[None, str, Path, Mapping] = None, model_name: str = "Mask-RT-DETR-S") -> Path:
    """Build, load `weights` (if given) and save a legacy inference directory with inference.yml."""
    from export.program import save_inference_dir

    if labels is None:
        labels = default_labels(num_classes)
    if len(labels) != num_classes:
        raise ConfigError(f"{len(labels)} labels given for num_classes={num_classes}; give one label per class")
    net = build_mask_rtdetr(num_classes, input_size, graph, weights)
    if weights is None:
        logger.warning("exporting %s with random weights (no weights given)", model_name)
    spec = mask_rtdetr_spec(model_name, labels, net.input_size, graph)
    return save_inference_dir(net, Path(out_dir), spec, net.input_size)
