"""CustomCSPPAN (PP-YOLOE's neck) with PaddleDetection's parameter names and shapes.

Mirrors `ppdet/modeling/necks/custom_pan.py` without the optional transformer / DropBlock parts
(PP-YOLOE_seg-S uses neither): FPN top-down stages + routes, then PAN bottom-up stages + routes.
"""
from __future__ import annotations

from typing import List, Sequence

import paddle
import paddle.nn as nn
import paddle.nn.functional as F

from .cspresnet import BasicBlock, ConvBNLayer


class SPP(nn.Layer):
    def __init__(self, ch_in: int, ch_out: int, k: int, pool_size: Sequence[int], act: str):
        super().__init__()
        self.pools = []
        for i, size in enumerate(pool_size):
            self.pools.append(self.add_sublayer(f"pool{i}", nn.MaxPool2D(size, stride=1, padding=size // 2)))
        self.conv = ConvBNLayer(ch_in, ch_out, k, padding=k // 2, act=act)

    def forward(self, x):
        return self.conv(paddle.concat([x] + [pool(x) for pool in self.pools], axis=1))


class CSPStage(nn.Layer):
    def __init__(self, ch_in: int, ch_out: int, n: int, act: str, spp: bool = False, use_alpha: bool = False):
        super().__init__()
        ch_mid = int(ch_out // 2)
        self.conv1 = ConvBNLayer(ch_in, ch_mid, 1, act=act)
        self.conv2 = ConvBNLayer(ch_in, ch_mid, 1, act=act)
        self.convs = nn.Sequential()
        for i in range(n):
            self.convs.add_sublayer(str(i), BasicBlock(ch_mid, ch_mid, act=act, shortcut=False, use_alpha=use_alpha))
            if spp and i == (n - 1) // 2:
                self.convs.add_sublayer("spp", SPP(ch_mid * 4, ch_mid, 1, [5, 9, 13], act=act))
        self.conv3 = ConvBNLayer(ch_mid * 2, ch_out, 1, act=act)

    def forward(self, x):
        y = paddle.concat([self.conv1(x), self.convs(self.conv2(x))], axis=1)
        return self.conv3(y)


class CustomCSPPAN(nn.Layer):
    """Inputs: backbone features at strides 8/16/32; outputs: the same strides, coarsest first."""

    def __init__(self, in_channels: Sequence[int], out_channels: Sequence[int] = (768, 384, 192),
                 act: str = "swish", stage_num: int = 1, block_num: int = 3, spp: bool = True,
                 width_mult: float = 1.0, depth_mult: float = 1.0, use_alpha: bool = False):
        super().__init__()
        out_channels = [max(round(c * width_mult), 1) for c in out_channels]
        block_num = max(round(block_num * depth_mult), 1)
        self.num_blocks = len(in_channels)
        self.out_channels: List[int] = out_channels
        coarse_first = list(in_channels)[::-1]

        fpn_stages, fpn_routes = [], []
        ch_pre = 0
        for i, (ch_in, ch_out) in enumerate(zip(coarse_first, out_channels)):
            if i > 0:
                ch_in += ch_pre // 2
            stage = nn.Sequential()
            for j in range(stage_num):
                stage.add_sublayer(str(j), CSPStage(ch_in if j == 0 else ch_out, ch_out, block_num, act,
                                                    spp=(spp and i == 0), use_alpha=use_alpha))
            fpn_stages.append(stage)
            if i < self.num_blocks - 1:
                fpn_routes.append(ConvBNLayer(ch_out, ch_out // 2, 1, stride=1, padding=0, act=act))
            ch_pre = ch_out
        self.fpn_stages = nn.LayerList(fpn_stages)
        self.fpn_routes = nn.LayerList(fpn_routes)

        pan_stages, pan_routes = [], []
        for i in reversed(range(self.num_blocks - 1)):
            pan_routes.append(ConvBNLayer(out_channels[i + 1], out_channels[i + 1], 3, stride=2, padding=1, act=act))
            ch_in, ch_out = out_channels[i] + out_channels[i + 1], out_channels[i]
            stage = nn.Sequential()
            for j in range(stage_num):
                stage.add_sublayer(str(j), CSPStage(ch_in if j == 0 else ch_out, ch_out, block_num, act,
                                                    spp=False, use_alpha=use_alpha))
            pan_stages.append(stage)
        self.pan_stages = nn.LayerList(pan_stages[::-1])
        self.pan_routes = nn.LayerList(pan_routes[::-1])

    def forward(self, blocks: Sequence) -> List:
        fpn_feats = []
        route = None
        for i, block in enumerate(list(blocks)[::-1]):
            if i > 0:
                block = paddle.concat([route, block], axis=1)
            route = self.fpn_stages[i](block)
            fpn_feats.append(route)
            if i < self.num_blocks - 1:
                route = F.interpolate(self.fpn_routes[i](route), scale_factor=2.0)
        pan_feats = [fpn_feats[-1]]
        route = fpn_feats[-1]
        for i in reversed(range(self.num_blocks - 1)):
            route = self.pan_routes[i](route)
            route = self.pan_stages[i](paddle.concat([route, fpn_feats[i]], axis=1))
            pan_feats.append(route)
        return pan_feats[::-1]
