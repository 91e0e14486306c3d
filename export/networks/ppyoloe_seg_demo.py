"""The demo model's network: PP-YOLOE_seg narrowed so it trains on two CPU cores, and its raw head.

`build_demo_network` constructs `export.networks.ppyoloe_seg.PPYOLOESeg` (same forward, same
post-processing, same parameter names) and swaps in narrower CSPResNet / CustomCSPPAN /
PPYOLOEInsHead sub-networks built from the same classes with the demo's width and depth
multipliers: PPYOLOESeg's constructor has no multipliers, so to rebuild the demo network for
export use this function with the same `DemoArch` (kept beside the weights).

`raw_head_outputs` runs the head's own layers for a batch and returns pre-activation outputs
(the training losses need logits; the head's `forward` returns decoded, batch-1 outputs).
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import NamedTuple, Sequence, Tuple

import numpy as np
import paddle
import paddle.nn.functional as F

from edge.errors import ModelError
from export.networks.cspresnet import CSPResNet
from export.networks.custom_pan import CustomCSPPAN
from export.networks.ppyoloe_seg import PPYOLOESeg
from export.networks.ppyoloe_seg_head import PPYOLOEInsHead
from export.networks.weights import load_weights


class RawHeadOutputs(NamedTuple):
    """The head's raw outputs over all anchors, before decoding (what training losses read)."""

    cls_logits: paddle.Tensor  # [B, L, C]
    reg_logits: paddle.Tensor  # [B, L, 4, reg_max + 1]
    mask_coeffs: paddle.Tensor  # [B, L, M]
    protos: paddle.Tensor  # [B, M, Hm, Wm]

FPN_STRIDES = (32, 16, 8)
REG_MAX = 16
PRIOR_PROB = 0.01  # PaddleDetection's classifier bias init: sigmoid(bias) = 0.01


@dataclass(frozen=True)
class DemoArch:
    num_classes: int
    input_size: Tuple[int, int] = (256, 256)
    width_mult: float = 0.25
    depth_mult: float = 0.33
    num_protos: int = 32
    num_masks: int = 32

    def to_dict(self) -> dict:
        return {**asdict(self), "input_size": list(self.input_size)}


def build_demo_network(arch: DemoArch, graph: str = "reference") -> PPYOLOESeg:
    net = PPYOLOESeg(num_classes=arch.num_classes, input_size=arch.input_size, graph=graph)
    net.backbone = CSPResNet(layers=(3, 6, 6, 3), channels=(64, 128, 256, 512, 1024), act="swish",
                             return_idx=(1, 2, 3), use_large_stem=True, width_mult=arch.width_mult,
                             depth_mult=arch.depth_mult, use_alpha=True)
    net.neck = CustomCSPPAN(net.backbone.out_channels, out_channels=(768, 384, 192), act="swish", stage_num=1,
                            block_num=3, spp=True, width_mult=arch.width_mult, depth_mult=arch.depth_mult)
    net.yolo_head = PPYOLOEInsHead(net.neck.out_channels, num_classes=arch.num_classes, act="swish",
                                   fpn_strides=FPN_STRIDES, reg_max=REG_MAX, num_masks=arch.num_masks,
                                   num_protos=arch.num_protos, width_mult=1.0)
    net.graph = graph  # re-applies the activation form to the new sub-networks
    return net


def init_head_for_training(head: PPYOLOEInsHead) -> None:
    """PaddleDetection's start: zero prediction convs, class bias at prior 0.01, box bias 1."""
    bias_cls = float(-np.log((1 - PRIOR_PROB) / PRIOR_PROB))
    for cls_conv, reg_conv in zip(head.pred_cls, head.pred_reg):
        cls_conv.weight.set_value(paddle.zeros_like(cls_conv.weight))
        cls_conv.bias.set_value(paddle.full_like(cls_conv.bias, bias_cls))
        reg_conv.weight.set_value(paddle.zeros_like(reg_conv.weight))
        reg_conv.bias.set_value(paddle.full_like(reg_conv.bias, 1.0))


def raw_head_outputs(net: PPYOLOESeg, images: paddle.Tensor) -> RawHeadOutputs:
    """Logits of the whole batch, anchors ordered as the head orders them (coarsest level first)."""
    head = net.yolo_head
    feats = net.neck(net.backbone(images))
    batch = images.shape[0]
    cls_list, reg_list, coeff_list = [], [], []
    for i, feat in enumerate(feats):
        avg = F.adaptive_avg_pool2d(feat, (1, 1))
        cls_logit = head.pred_cls[i](head.stem_cls[i](feat, avg) + feat)
        reg = head.pred_reg[i](head.stem_reg[i](feat, avg))
        coeff = head.pred_ins[i](head.stem_ins[i](feat, avg) + feat)
        cls_list.append(cls_logit.flatten(2).transpose([0, 2, 1]))
        coeff_list.append(coeff.flatten(2).transpose([0, 2, 1]))
        # channels are side-major: [4 sides x (reg_max+1) bins], as the head's decode reads them
        reg_list.append(reg.reshape([batch, 4, head.reg_channels, -1]).transpose([0, 3, 1, 2]))
    return RawHeadOutputs(paddle.concat(cls_list, 1), paddle.concat(reg_list, 1), paddle.concat(coeff_list, 1),
                          head.proto(feats[-1]))


def anchor_points(input_size: Sequence[int], strides: Sequence[int] = FPN_STRIDES,
                  offset: float = 0.5) -> Tuple[np.ndarray, np.ndarray]:
    """Anchor centres [L, 2] (x, y) in input pixels and their strides [L], in the head's order."""
    points, stride_list = [], []
    for stride in strides:
        h, w = int(input_size[0]) // stride, int(input_size[1]) // stride
        ys, xs = np.meshgrid(np.arange(h, dtype=np.float32), np.arange(w, dtype=np.float32), indexing="ij")
        points.append(np.stack([(xs.ravel() + offset) * stride, (ys.ravel() + offset) * stride], axis=1))
        stride_list.append(np.full(h * w, stride, np.float32))
    return np.concatenate(points), np.concatenate(stride_list)


def load_demo_model(model_dir: "str | Path", graph: str = "reference") -> Tuple[PPYOLOESeg, list]:
    """(network in eval mode with the trained weights, labels) from a training output folder
    (`model.json` + `model.pdparams`, as export.train.train_demo writes them)."""
    model_dir = Path(model_dir)
    meta_path, weights_path = model_dir / "model.json", model_dir / "model.pdparams"
    if not meta_path.is_file() or not weights_path.is_file():
        raise ModelError(f"{model_dir} lacks model.json or model.pdparams; train with "
                         "python -m export.train.train_demo --out <dir> first")
    meta = json.loads(meta_path.read_text(encoding="utf-8"))
    arch = DemoArch(**{**meta["arch"], "input_size": tuple(meta["arch"]["input_size"])})
    net = build_demo_network(arch, graph=graph)
    load_weights(net, str(weights_path))
    net.eval()
    return net, list(meta["labels"])


def save_demo_inference_dir(model_dir: "str | Path", out_dir: "str | Path", graph: str = "edge",
                            model_name: str = "PP-YOLOE_seg-demo") -> Path:
    """The trained demo model as a legacy inference directory + inference.yml (edge graph by default),
    ready for the export chain (compat -> quantize -> optimize -> bundle) and the `paddle` backend."""
    from export.networks.ppyoloe_seg import ppyoloe_seg_spec
    from export.program import save_inference_dir

    net, labels = load_demo_model(model_dir, graph=graph)
    spec = ppyoloe_seg_spec(graph, labels, net.input_size, model_name=model_name)
    return save_inference_dir(net, Path(out_dir), spec, net.input_size)
