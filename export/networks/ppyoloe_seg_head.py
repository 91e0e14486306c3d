"""PPYOLOEInsHead (PP-YOLOE_seg's head) with PaddleDetection's parameter names and shapes.

Mirrors `ppdet/modeling/heads/ppyoloe_ins_head.py` in eval mode: per level an ESE attention stem and
a 3x3 prediction conv for classes, box distributions (DFL, reg_max 16) and mask coefficients, plus
the MaskProto branch that upsamples the stride-8 feature to stride-4 prototypes. `forward` returns
the decoded, un-suppressed head outputs; NMS and masks live in ppyoloe_seg_post.py.
"""
from __future__ import annotations

from typing import NamedTuple, Sequence, Tuple

import paddle
import paddle.nn as nn
import paddle.nn.functional as F

from .cspresnet import ConvBNLayer


class HeadOutputs(NamedTuple):
    boxes: paddle.Tensor  # [1, A, 4] x1 y1 x2 y2 in model-input pixels
    scores: paddle.Tensor  # [1, C, A] sigmoid class scores
    mask_coeffs: paddle.Tensor  # [1, M, A] mask coefficients
    protos: paddle.Tensor  # [1, M, H/4, W/4] prototypes


class ESEAttn(nn.Layer):
    def __init__(self, channels: int, act: str = "swish"):
        super().__init__()
        self.fc = nn.Conv2D(channels, channels, 1)
        self.conv = ConvBNLayer(channels, channels, 1, act=act)

    def forward(self, feat, avg_feat):
        return self.conv(feat * F.sigmoid(self.fc(avg_feat)))


class ProtoConv(nn.Layer):
    """conv (no bias) -> bn -> x * sigmoid(x): PaddleDetection's BaseConv as MaskProto uses it."""

    def __init__(self, ch_in: int, ch_out: int, ksize: int):
        super().__init__()
        self.conv = nn.Conv2D(ch_in, ch_out, ksize, stride=1, padding=(ksize - 1) // 2, bias_attr=False)
        self.bn = nn.BatchNorm2D(ch_out)

    def forward(self, x):
        x = self.bn(self.conv(x))
        return x * F.sigmoid(x)


class MaskProto(nn.Layer):
    def __init__(self, ch_in: int, num_protos: int, num_masks: int):
        super().__init__()
        self.conv1 = ProtoConv(ch_in, num_protos, 3)
        self.upsample = nn.Conv2DTranspose(num_protos, num_protos, 2, 2, 0, bias_attr=True)
        self.conv2 = ProtoConv(num_protos, num_protos, 3)
        self.conv3 = ProtoConv(num_protos, num_masks, 1)

    def forward(self, x):
        return self.conv3(self.conv2(self.upsample(self.conv1(x))))


def anchor_grid(input_size: Tuple[int, int], strides: Sequence[int], offset: float = 0.5):
    """Anchor centres [A, 2] (grid units) and strides [A, 1], coarsest level first.

    Built from `range` ops with [1]-shaped bounds and broadcasting (no meshgrid, no constants baked
    with assign_value, no 0-D tensors), so the saved program stays Lite-friendly.
    """
    points, stride_list = [], []
    for stride in strides:
        h, w = input_size[0] // stride, input_size[1] // stride
        xs = paddle.arange(paddle.full([1], 0.0), paddle.full([1], float(w)), paddle.full([1], 1.0)) + offset
        ys = paddle.arange(paddle.full([1], 0.0), paddle.full([1], float(h)), paddle.full([1], 1.0)) + offset
        grid_x = paddle.full([h, w], 0.0) + xs.reshape([1, w])
        grid_y = paddle.full([h, w], 0.0) + ys.reshape([h, 1])
        points.append(paddle.concat([grid_x.reshape([h * w, 1]), grid_y.reshape([h * w, 1])], axis=1))
        stride_list.append(paddle.full([h * w, 1], float(stride)))
    return paddle.concat(points, axis=0), paddle.concat(stride_list, axis=0)


class PPYOLOEInsHead(nn.Layer):
    def __init__(self, in_channels: Sequence[int], num_classes: int = 80, act: str = "swish",
                 fpn_strides: Sequence[int] = (32, 16, 8), grid_cell_offset: float = 0.5, reg_max: int = 16,
                 num_masks: int = 32, num_protos: int = 256, width_mult: float = 1.0):
        super().__init__()
        self.in_channels = list(in_channels)
        self.num_classes = num_classes
        self.fpn_strides = list(fpn_strides)
        self.grid_cell_offset = grid_cell_offset
        self.reg_channels = reg_max + 1
        self.num_masks = num_masks
        self.num_protos = int(num_protos * width_mult)
        self.stem_cls = nn.LayerList([ESEAttn(c, act) for c in self.in_channels])
        self.stem_reg = nn.LayerList([ESEAttn(c, act) for c in self.in_channels])
        self.stem_ins = nn.LayerList([ESEAttn(c, act) for c in self.in_channels])
        self.pred_cls = nn.LayerList([nn.Conv2D(c, num_classes, 3, padding=1) for c in self.in_channels])
        self.pred_reg = nn.LayerList([nn.Conv2D(c, 4 * self.reg_channels, 3, padding=1) for c in self.in_channels])
        self.pred_ins = nn.LayerList([nn.Conv2D(c, num_masks, 3, padding=1) for c in self.in_channels])
        # fixed DFL projection 0..reg_max; stored in .pdparams, so it is a (frozen) parameter here too
        self.proj_conv = nn.Conv2D(self.reg_channels, 1, 1, bias_attr=False)
        self.proj_conv.weight.set_value(
            paddle.linspace(0, reg_max, self.reg_channels).reshape([1, self.reg_channels, 1, 1])
        )
        self.proj_conv.weight.stop_gradient = True
        self.proto = MaskProto(self.in_channels[-1], self.num_protos, num_masks)

    def forward(self, feats: Sequence, input_size: Tuple[int, int]) -> HeadOutputs:
        protos = self.proto(feats[-1])
        scores, dists, coeffs = [], [], []
        for i, feat in enumerate(feats):
            h, w = int(feat.shape[2]), int(feat.shape[3])
            length = h * w
            avg_feat = F.adaptive_avg_pool2d(feat, (1, 1))
            cls_logit = self.pred_cls[i](self.stem_cls[i](feat, avg_feat) + feat)
            reg_dist = self.pred_reg[i](self.stem_reg[i](feat, avg_feat))
            coeff = self.pred_ins[i](self.stem_ins[i](feat, avg_feat) + feat)
            coeffs.append(coeff.reshape([1, self.num_masks, length]))
            # [1, 4*17, h, w] -> [1, 17, l, 4]: softmax over the 17 bins, then the projection conv
            reg_dist = reg_dist.reshape([1, 4, self.reg_channels, length]).transpose([0, 2, 3, 1])
            reg_dist = self.proj_conv(F.softmax(reg_dist, axis=1)).reshape([1, length, 4])
            dists.append(reg_dist)
            scores.append(F.sigmoid(cls_logit).reshape([1, self.num_classes, length]))
        points, strides = anchor_grid(input_size, self.fpn_strides, self.grid_cell_offset)
        dist = paddle.concat(dists, axis=1)
        lt, rb = dist[:, :, 0:2], dist[:, :, 2:4]
        boxes = paddle.concat([points - lt, points + rb], axis=-1) * strides
        return HeadOutputs(boxes, paddle.concat(scores, axis=-1), paddle.concat(coeffs, axis=-1), protos)
