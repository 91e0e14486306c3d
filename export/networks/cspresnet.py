"""CSPResNet (PP-YOLOE's backbone) with PaddleDetection's parameter names and shapes.

Mirrors `ppdet/modeling/backbones/cspresnet.py` (CSPResNet, CSPResStage, BasicBlock, RepVggBlock,
EffectiveSELayer, ConvBNLayer). RepVgg blocks keep their training form (3x3 conv+BN, 1x1 conv+BN,
optional `alpha`), which is the layout of a `.pdparams` file.
"""
from __future__ import annotations

from typing import List, Optional, Sequence

import paddle
import paddle.nn as nn
import paddle.nn.functional as F


class Swish(nn.Layer):
    """x * sigmoid(x). `decomposed` picks the op pair (sigmoid, mul) instead of the `swish` op.

    Paddle 3 saves `swish` without the `beta` attribute Paddle Lite's opt requires (docs/TOOLCHAIN.md),
    so edge graphs use the decomposed form; the reference graph keeps PaddleDetection's `swish`.
    """

    def __init__(self):
        super().__init__()
        self.decomposed = False

    def forward(self, x):
        if self.decomposed:
            return x * F.sigmoid(x)
        return F.swish(x)


def make_act(act: Optional[str]) -> Optional[nn.Layer]:
    if act is None:
        return None
    if act == "swish":
        return Swish()
    if act == "relu":
        return nn.ReLU()
    raise ValueError(f"unsupported activation {act!r}")


class ConvBNLayer(nn.Layer):
    """`conv` (no bias) -> `bn` -> activation; PaddleDetection's ConvBNLayer."""

    def __init__(self, ch_in: int, ch_out: int, filter_size: int = 3, stride: int = 1, padding: int = 0,
                 act: Optional[str] = None):
        super().__init__()
        self.conv = nn.Conv2D(ch_in, ch_out, filter_size, stride=stride, padding=padding, bias_attr=False)
        self.bn = nn.BatchNorm2D(ch_out)
        self.act = make_act(act)

    def forward(self, x):
        x = self.bn(self.conv(x))
        return self.act(x) if self.act is not None else x


class RepVggBlock(nn.Layer):
    """3x3 conv+BN plus (alpha x) 1x1 conv+BN, then the activation (training form)."""

    def __init__(self, ch_in: int, ch_out: int, act: str = "relu", alpha: bool = False):
        super().__init__()
        self.conv1 = ConvBNLayer(ch_in, ch_out, 3, stride=1, padding=1, act=None)
        self.conv2 = ConvBNLayer(ch_in, ch_out, 1, stride=1, padding=0, act=None)
        self.act = make_act(act)
        if alpha:
            self.alpha = self.create_parameter(
                shape=[1], dtype="float32", default_initializer=nn.initializer.Constant(1.0)
            )
        else:
            self.alpha = None

    def forward(self, x):
        if self.alpha is not None:
            y = self.conv1(x) + self.alpha * self.conv2(x)
        else:
            y = self.conv1(x) + self.conv2(x)
        return self.act(y) if self.act is not None else y


class BasicBlock(nn.Layer):
    def __init__(self, ch_in: int, ch_out: int, act: str = "relu", shortcut: bool = True, use_alpha: bool = False):
        super().__init__()
        assert ch_in == ch_out
        self.conv1 = ConvBNLayer(ch_in, ch_out, 3, stride=1, padding=1, act=act)
        self.conv2 = RepVggBlock(ch_out, ch_out, act=act, alpha=use_alpha)
        self.shortcut = shortcut

    def forward(self, x):
        y = self.conv2(self.conv1(x))
        return x + y if self.shortcut else y


class EffectiveSELayer(nn.Layer):
    """Effective squeeze-excitation: x * hardsigmoid(fc(mean(x)))."""

    def __init__(self, channels: int):
        super().__init__()
        self.fc = nn.Conv2D(channels, channels, kernel_size=1, padding=0)

    def forward(self, x):
        x_se = self.fc(x.mean((2, 3), keepdim=True))
        return x * F.hardsigmoid(x_se)


class CSPResStage(nn.Layer):
    def __init__(self, ch_in: int, ch_out: int, n: int, stride: int, act: str, use_alpha: bool):
        super().__init__()
        ch_mid = (ch_in + ch_out) // 2
        self.conv_down = ConvBNLayer(ch_in, ch_mid, 3, stride=2, padding=1, act=act) if stride == 2 else None
        self.conv1 = ConvBNLayer(ch_mid, ch_mid // 2, 1, act=act)
        self.conv2 = ConvBNLayer(ch_mid, ch_mid // 2, 1, act=act)
        self.blocks = nn.Sequential(
            *[BasicBlock(ch_mid // 2, ch_mid // 2, act=act, shortcut=True, use_alpha=use_alpha) for _ in range(n)]
        )
        self.attn = EffectiveSELayer(ch_mid)
        self.conv3 = ConvBNLayer(ch_mid, ch_out, 1, act=act)

    def forward(self, x):
        if self.conv_down is not None:
            x = self.conv_down(x)
        y = paddle.concat([self.conv1(x), self.blocks(self.conv2(x))], axis=1)
        return self.conv3(self.attn(y))


class CSPResNet(nn.Layer):
    """Returns the features of stages `return_idx` (strides 8, 16, 32 for the default [1, 2, 3])."""

    def __init__(self, layers: Sequence[int] = (3, 6, 6, 3), channels: Sequence[int] = (64, 128, 256, 512, 1024),
                 act: str = "swish", return_idx: Sequence[int] = (1, 2, 3), use_large_stem: bool = True,
                 width_mult: float = 1.0, depth_mult: float = 1.0, use_alpha: bool = True):
        super().__init__()
        channels = [max(round(c * width_mult), 1) for c in channels]
        layers = [max(round(n * depth_mult), 1) for n in layers]
        stem = [("conv1", ConvBNLayer(3, channels[0] // 2, 3, stride=2, padding=1, act=act))]
        if use_large_stem:
            stem.append(("conv2", ConvBNLayer(channels[0] // 2, channels[0] // 2, 3, stride=1, padding=1, act=act)))
            stem.append(("conv3", ConvBNLayer(channels[0] // 2, channels[0], 3, stride=1, padding=1, act=act)))
        else:
            stem.append(("conv2", ConvBNLayer(channels[0] // 2, channels[0], 3, stride=1, padding=1, act=act)))
        self.stem = nn.Sequential(*stem)
        self.stages = nn.Sequential(
            *[(str(i), CSPResStage(channels[i], channels[i + 1], layers[i], 2, act, use_alpha))
              for i in range(len(channels) - 1)]
        )
        self.return_idx = list(return_idx)
        self.out_channels: List[int] = [channels[1:][i] for i in self.return_idx]

    def forward(self, image) -> List:
        x = self.stem(image)
        outs = []
        for idx, stage in enumerate(self.stages):
            x = stage(x)
            if idx in self.return_idx:
                outs.append(x)
        return outs
