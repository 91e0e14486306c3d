"""PPHGNetV2 backbone with PaddleDetection's parameter names (ppdet/modeling/backbones/hgnet_v2.py).

Only inference is modelled: frozen batch norms are plain `BatchNorm2D` layers (same state_dict
keys: weight, bias, _mean, _variance). The learnable affine blocks (`use_lab`) of the B-series
classification backbones are not used by any detection config, so they are left out.
"""
from __future__ import annotations

from typing import Dict, List, Sequence, Tuple

import paddle
import paddle.nn as nn

from edge.errors import ConfigError

# in_channels, mid_channels, out_channels, num_blocks, downsample, light_block, kernel_size, layer_num
StageConfig = Tuple[int, int, int, int, bool, bool, int, int]

ARCH_CONFIGS: Dict[str, Dict[str, object]] = {
    "S": {
        "stem_channels": (3, 24, 32),
        "stages": (
            (32, 32, 64, 1, False, False, 3, 3),
            (64, 48, 256, 1, True, False, 3, 3),
            (256, 96, 512, 2, True, True, 5, 3),
            (512, 192, 1024, 1, True, True, 5, 3),
        ),
    },
    "M": {
        "stem_channels": (3, 24, 32),
        "stages": (
            (32, 32, 96, 1, False, False, 3, 4),
            (96, 64, 384, 1, True, False, 3, 4),
            (384, 128, 768, 3, True, True, 5, 4),
            (768, 256, 1536, 1, True, True, 5, 4),
        ),
    },
    "L": {
        "stem_channels": (3, 32, 48),
        "stages": (
            (48, 48, 128, 1, False, False, 3, 6),
            (128, 96, 512, 1, True, False, 3, 6),
            (512, 192, 1024, 3, True, True, 5, 6),
            (1024, 384, 2048, 1, True, True, 5, 6),
        ),
    },
}


class ConvBNAct(nn.Layer):
    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 3, stride: int = 1,
                 padding: object = None, groups: int = 1, use_act: bool = True):
        super().__init__()
        self.use_act = use_act
        self.conv = nn.Conv2D(
            in_channels, out_channels, kernel_size, stride,
            padding=padding if isinstance(padding, str) else (kernel_size - 1) // 2,
            groups=groups, bias_attr=False,
        )
        self.bn = nn.BatchNorm2D(out_channels)
        if use_act:
            self.act = nn.ReLU()

    def forward(self, x):
        x = self.bn(self.conv(x))
        return self.act(x) if self.use_act else x


class LightConvBNAct(nn.Layer):
    """1x1 conv (no activation) followed by a depthwise kxk conv."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, stride: int = 1):
        super().__init__()
        self.conv1 = ConvBNAct(in_channels, out_channels, kernel_size=1, use_act=False)
        self.conv2 = ConvBNAct(out_channels, out_channels, kernel_size=kernel_size, groups=out_channels)

    def forward(self, x):
        return self.conv2(self.conv1(x))


class StemBlock(nn.Layer):
    def __init__(self, in_channels: int, mid_channels: int, out_channels: int):
        super().__init__()
        self.stem1 = ConvBNAct(in_channels, mid_channels, 3, stride=2)
        # 2x2 convs and pool with "SAME" padding: pads right/bottom only, as PaddleDetection does
        self.stem2a = ConvBNAct(mid_channels, mid_channels // 2, 2, padding="SAME")
        self.stem2b = ConvBNAct(mid_channels // 2, mid_channels, 2, padding="SAME")
        self.stem3 = ConvBNAct(mid_channels * 2, mid_channels, 3, stride=2)
        self.stem4 = ConvBNAct(mid_channels, out_channels, 1)
        self.pool = nn.MaxPool2D(kernel_size=2, stride=1, ceil_mode=True, padding="SAME")

    def forward(self, x):
        x = self.stem1(x)
        x2 = self.stem2b(self.stem2a(x))
        x1 = self.pool(x)
        x = paddle.concat([x1, x2], 1)
        return self.stem4(self.stem3(x))


class HGBlock(nn.Layer):
    def __init__(self, in_channels: int, mid_channels: int, out_channels: int, kernel_size: int,
                 layer_num: int, identity: bool, light_block: bool):
        super().__init__()
        self.identity = identity
        self.layers = nn.LayerList()
        for i in range(layer_num):
            cin = in_channels if i == 0 else mid_channels
            if light_block:
                self.layers.append(LightConvBNAct(cin, mid_channels, kernel_size))
            else:
                self.layers.append(ConvBNAct(cin, mid_channels, kernel_size))
        total_channels = in_channels + layer_num * mid_channels
        self.aggregation_squeeze_conv = ConvBNAct(total_channels, out_channels // 2, 1)
        self.aggregation_excitation_conv = ConvBNAct(out_channels // 2, out_channels, 1)

    def forward(self, x):
        identity = x
        outputs = [x]
        for layer in self.layers:
            x = layer(x)
            outputs.append(x)
        x = paddle.concat(outputs, axis=1)
        x = self.aggregation_excitation_conv(self.aggregation_squeeze_conv(x))
        return x + identity if self.identity else x


class HGStage(nn.Layer):
    def __init__(self, config: StageConfig):
        super().__init__()
        in_channels, mid_channels, out_channels, block_num, downsample, light_block, kernel_size, layer_num = config
        self.has_downsample = downsample
        if downsample:
            self.downsample = ConvBNAct(in_channels, in_channels, 3, stride=2, groups=in_channels, use_act=False)
        self.blocks = nn.Sequential(*[
            HGBlock(in_channels if i == 0 else out_channels, mid_channels, out_channels, kernel_size,
                    layer_num, identity=i > 0, light_block=light_block)
            for i in range(block_num)
        ])

    def forward(self, x):
        if self.has_downsample:
            x = self.downsample(x)
        return self.blocks(x)


class PPHGNetV2(nn.Layer):
    """Returns the stage outputs named by `return_idx` (strides 4, 8, 16, 32)."""

    def __init__(self, arch: str = "S", return_idx: Sequence[int] = (0, 1, 2, 3)):
        super().__init__()
        if arch not in ARCH_CONFIGS:
            raise ConfigError(f"unknown PPHGNetV2 arch {arch!r}; choose one of {', '.join(ARCH_CONFIGS)}")
        config = ARCH_CONFIGS[arch]
        stem_in, stem_mid, stem_out = config["stem_channels"]  # type: ignore[misc]
        self.return_idx = list(return_idx)
        self.stem = StemBlock(stem_in, stem_mid, stem_out)
        self.stages = nn.LayerList([HGStage(stage) for stage in config["stages"]])  # type: ignore[union-attr]
        self.out_channels: List[int] = [config["stages"][i][2] for i in self.return_idx]  # type: ignore[index]
        self.out_strides: List[int] = [[4, 8, 16, 32][i] for i in self.return_idx]

    def forward(self, image) -> List:
        x = self.stem(image)
        outs = []
        for idx, stage in enumerate(self.stages):
            x = stage(x)
            if idx in self.return_idx:
                outs.append(x)
        return outs
