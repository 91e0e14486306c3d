"""PP-YOLOE_seg-S: CSPResNet -> CustomCSPPAN -> PPYOLOEInsHead, with PaddleDetection's parameter names.

`PPYOLOESeg(graph="reference")` reproduces PaddleDetection's exported program (full-size 0/1 masks,
Python control flow for the no-detection case). `graph="edge"` gives the same detections as a
graph Paddle Lite converts and runs: no control flow, no bmm, no BOOL parameters, no 0-D tensors,
no negative-step slices, masks left at prototype resolution (`lowres`, stride 4).
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Mapping, Optional, Sequence, Tuple, Union

import paddle
import paddle.nn as nn

from edge.errors import ConfigError
from edge.spec import MaskLayout, ModelSpec
from export.program import default_labels, detection_spec

from .cspresnet import CSPResNet, Swish
from .custom_pan import CustomCSPPAN
from .ppyoloe_seg_head import PPYOLOEInsHead
from .ppyoloe_seg_post import NMSConfig, edge_post_process, reference_post_process
from .weights import load_weights

logger = logging.getLogger(__name__)

GRAPHS = ("reference", "edge")
MASK_STRIDE = 4  # MaskProto: stride-8 feature upsampled x2
EDGE_MASK_LAYOUT = MaskLayout("lowres", stride=MASK_STRIDE, threshold=0.5)
# PP-YOLOE_seg-S of configs/ppyoloe_seg/ppyoloe_seg_s_80e_coco.yml
DEPTH_MULT, WIDTH_MULT = 0.33, 0.50


def check_input_size(input_size: Sequence[int]) -> Tuple[int, int]:
    try:
        h, w = (int(v) for v in input_size)
    except (TypeError, ValueError):
        raise ConfigError(f"input size {input_size!r} must be two integers [h, w]") from None
    if h <= 0 or w <= 0 or h % 32 or w % 32:
        raise ConfigError(f"input size {input_size!r}: PP-YOLOE_seg needs positive multiples of 32 (e.g. 640, 640)")
    return h, w


class PPYOLOESeg(nn.Layer):
    """forward(im_shape [1,2], image [1,3,H,W], scale_factor [1,2]) -> (bbox, bbox_num, mask)."""

    def __init__(self, num_classes: int = 80, input_size: Sequence[int] = (640, 640), graph: str = "edge",
                 nms: Optional[NMSConfig] = None):
        super().__init__()
        if int(num_classes) < 1:
            raise ConfigError(f"num_classes must be >= 1, got {num_classes!r}")
        self.input_size = check_input_size(input_size)
        self.nms = nms if nms is not None else NMSConfig()
        self.backbone = CSPResNet(layers=(3, 6, 6, 3), channels=(64, 128, 256, 512, 1024), act="swish",
                                  return_idx=(1, 2, 3), use_large_stem=True, width_mult=WIDTH_MULT,
                                  depth_mult=DEPTH_MULT, use_alpha=True)
        self.neck = CustomCSPPAN(self.backbone.out_channels, out_channels=(768, 384, 192), act="swish",
                                 stage_num=1, block_num=3, spp=True, width_mult=WIDTH_MULT, depth_mult=DEPTH_MULT)
        self.yolo_head = PPYOLOEInsHead(self.neck.out_channels, num_classes=int(num_classes), act="swish",
                                        fpn_strides=(32, 16, 8), reg_max=16, num_masks=32, num_protos=256,
                                        width_mult=WIDTH_MULT)
        self.graph = graph

    @property
    def graph(self) -> str:
        return self._graph

    @graph.setter
    def graph(self, value: str) -> None:
        if value not in GRAPHS:
            raise ConfigError(f"unknown graph {value!r}; choose one of {', '.join(GRAPHS)}")
        self._graph = value
        for layer in self.sublayers():
            if isinstance(layer, Swish):
                layer.decomposed = value == "edge"

    @property
    def num_classes(self) -> int:
        return self.yolo_head.num_classes

    def forward(self, im_shape, image, scale_factor):
        feats = self.neck(self.backbone(image))
        outs = self.yolo_head(feats, self.input_size)
        if self._graph == "edge":
            # keep `im_shape` a program input (same feeds as PaddleDetection's export) although the edge
            # graph does not need it: a zero-scaled copy of it is added to scale_factor
            scale_factor = scale_factor + paddle.scale(im_shape, scale=0.0)
            return edge_post_process(outs, scale_factor, self.nms)
        return reference_post_process(outs, im_shape, scale_factor, self.input_size, self.nms)


def build_ppyoloe_seg(num_classes: int = 80, input_size: Sequence[int] = (640, 640), graph: str = "edge",
                      weights: Optional[Union[str, Path, Mapping[str, Any]]] = None) -> PPYOLOESeg:
    """A PP-YOLOE_seg-S network in eval mode, with `weights` (.pdparams or state dict) loaded strictly."""
    net = PPYOLOESeg(num_classes=num_classes, input_size=input_size, graph=graph)
    if weights is not None:
        load_weights(net, weights)
    net.eval()
    return net


def ppyoloe_seg_spec(graph: str, labels: Sequence[str], input_size: Tuple[int, int],
                     model_name: str = "PP-YOLOE_seg-S") -> ModelSpec:
    """What inference.yml says: PaddleDetection's keys, plus `mask_layout` for the edge graph."""
    return detection_spec(model_name, "PPYOLOE", labels, input_size, EDGE_MASK_LAYOUT if graph == "edge" else None)


def export_ppyoloe_seg(out_dir: Union[str, Path], graph: str = "edge", num_classes: int = 80,
                       labels: Optional[Sequence[str]] = None, input_size: Sequence[int] = (640, 640),
                       weights: Optional[Union[str, Path, Mapping[str, Any]]] = None,
                       model_name: str = "PP-YOLOE_seg-S") -> Path:
    """Build the network, load `weights` (if given) and save a legacy inference directory + inference.yml."""
    from export.program import save_inference_dir

    size = check_input_size(input_size)
    labels = list(labels) if labels is not None else default_labels(num_classes)
    if len(labels) != num_classes:
        raise ConfigError(f"{len(labels)} labels given for num_classes={num_classes}; give one label per class")
    net = build_ppyoloe_seg(num_classes=num_classes, input_size=size, graph=graph, weights=weights)
    if weights is None:
        logger.warning("exporting %s with random weights (no weights given)", model_name)
    spec = ppyoloe_seg_spec(graph, labels, size, model_name)
    out = save_inference_dir(net, Path(out_dir), spec, size)
    logger.info("exported %s (%s graph, %d classes, input %dx%d) to %s", model_name, graph, num_classes, *size, out)
    return out
