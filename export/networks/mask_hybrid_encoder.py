"""MaskHybridEncoder (PaddleDetection ppdet/modeling/transformers/hybrid_encoder.py), inference only.

Input: the backbone's four stage outputs (strides 4, 8, 16, 32). The three coarse levels go
through input projection, one transformer encoder layer on stride 16, a top-down FPN and a
bottom-up PAN; the stride-4 level joins the mask-feature branch that makes the prototypes.

Written for Paddle Lite as well as Paddle Inference: activations are `x * sigmoid(x)` (no
`swish`/`silu` ops), flattening is `reshape2` (which keeps its XShape output; Lite's opt crashes
on `flatten_contiguous_range` without one when a matmul follows), and the fixed position
embedding is a float constant computed once for the input size.
"""
from __future__ import annotations

from typing import List, Sequence, Tuple

import numpy as np
import paddle
import paddle.nn as nn
import paddle.nn.functional as F


def silu(x):
    return x * F.sigmoid(x)


class BaseConv(nn.Layer):
    """conv + BN + SiLU (csp_darknet.BaseConv: always x * sigmoid(x), whatever `act` says)."""

    def __init__(self, in_channels: int, out_channels: int, ksize: int, stride: int = 1, bias: bool = False):
        super().__init__()
        self.conv = nn.Conv2D(in_channels, out_channels, ksize, stride, padding=(ksize - 1) // 2, bias_attr=bias)
        self.bn = nn.BatchNorm2D(out_channels)

    def forward(self, x):
        return silu(self.bn(self.conv(x)))


class ConvBN(nn.Layer):
    def __init__(self, ch_in: int, ch_out: int, filter_size: int, padding: int):
        super().__init__()
        self.conv = nn.Conv2D(ch_in, ch_out, filter_size, padding=padding, bias_attr=False)
        self.bn = nn.BatchNorm2D(ch_out)

    def forward(self, x):
        return self.bn(self.conv(x))


class RepVggBlock(nn.Layer):
    """3x3 and 1x1 conv-BN branches summed, then SiLU (cspresnet.RepVggBlock, no alpha)."""

    def __init__(self, ch_in: int, ch_out: int):
        super().__init__()
        self.conv1 = ConvBN(ch_in, ch_out, 3, padding=1)
        self.conv2 = ConvBN(ch_in, ch_out, 1, padding=0)

    def forward(self, x):
        return silu(self.conv1(x) + self.conv2(x))


class CSPRepLayer(nn.Layer):
    def __init__(self, in_channels: int, out_channels: int, num_blocks: int = 3, expansion: float = 1.0):
        super().__init__()
        hidden = int(out_channels * expansion)
        self.conv1 = BaseConv(in_channels, hidden, 1)
        self.conv2 = BaseConv(in_channels, hidden, 1)
        self.bottlenecks = nn.Sequential(*[RepVggBlock(hidden, hidden) for _ in range(num_blocks)])
        self.conv3 = BaseConv(hidden, out_channels, 1) if hidden != out_channels else nn.Identity()

    def forward(self, x):
        return self.conv3(self.bottlenecks(self.conv1(x)) + self.conv2(x))


class MultiHeadAttention(nn.Layer):
    """ppdet.modeling.layers.MultiHeadAttention with one packed in_proj (q, k, v column blocks)."""

    def __init__(self, embed_dim: int, num_heads: int):
        super().__init__()
        self.embed_dim = embed_dim
        self.num_heads = num_heads
        self.head_dim = embed_dim // num_heads
        self.in_proj_weight = self.create_parameter([embed_dim, 3 * embed_dim], dtype="float32")
        self.in_proj_bias = self.create_parameter([3 * embed_dim], dtype="float32", is_bias=True)
        self.out_proj = nn.Linear(embed_dim, embed_dim)

    def _project(self, x, index: int):
        lo, hi = index * self.embed_dim, (index + 1) * self.embed_dim
        x = F.linear(x, self.in_proj_weight[:, lo:hi], self.in_proj_bias[lo:hi])
        return x.reshape([0, 0, self.num_heads, self.head_dim]).transpose([0, 2, 1, 3])

    def forward(self, query, key, value):
        q, k, v = self._project(query, 0), self._project(key, 1), self._project(value, 2)
        product = paddle.matmul(q, k, transpose_y=True) * (float(self.head_dim) ** -0.5)
        out = paddle.matmul(F.softmax(product), v)
        out = out.transpose([0, 2, 1, 3]).reshape([0, 0, self.embed_dim])
        return self.out_proj(out)


class TransformerLayer(nn.Layer):
    """Post-norm encoder layer (hybrid_encoder.TransformerLayer), GELU feed-forward."""

    def __init__(self, d_model: int = 256, nhead: int = 8, dim_feedforward: int = 1024):
        super().__init__()
        self.self_attn = MultiHeadAttention(d_model, nhead)
        self.linear1 = nn.Linear(d_model, dim_feedforward)
        self.linear2 = nn.Linear(dim_feedforward, d_model)
        self.norm1 = nn.LayerNorm(d_model)
        self.norm2 = nn.LayerNorm(d_model)

    def forward(self, src, pos_embed):
        q = k = src + pos_embed
        src = self.norm1(src + self.self_attn(q, k, src))
        return self.norm2(src + self.linear2(F.gelu(self.linear1(src))))


class TransformerEncoder(nn.Layer):
    def __init__(self, num_layers: int, **layer_args):
        super().__init__()
        self.layers = nn.LayerList([TransformerLayer(**layer_args) for _ in range(num_layers)])

    def forward(self, src, pos_embed):
        for layer in self.layers:
            src = layer(src, pos_embed)
        return src


def sincos_position_embedding(w: int, h: int, embed_dim: int = 256, temperature: float = 10000.0) -> np.ndarray:
    """[1, w*h, embed_dim] float32, PaddleDetection's layout.

    PaddleDetection meshgrids (grid_w, grid_h) with 'ij' indexing and flattens that, so the
    token k = i*h + j gets "w" coordinate k // h and "h" coordinate k % h; we keep that quirk so
    trained weights see the embedding they were trained with.
    """
    grid_w, grid_h = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32), indexing="ij")
    pos_dim = embed_dim // 4
    omega = np.arange(pos_dim, dtype=np.float32) / np.float32(pos_dim)
    omega = (1.0 / (np.float32(temperature) ** omega)).astype(np.float32)
    out_w = grid_w.reshape(-1, 1) @ omega[None]
    out_h = grid_h.reshape(-1, 1) @ omega[None]
    emb = np.concatenate([np.sin(out_w), np.cos(out_w), np.sin(out_h), np.cos(out_h)], axis=1)
    return emb[None].astype(np.float32)


class MaskFeatFPN(nn.Layer):
    """Sums the three encoder levels at stride 8 (convs + 2x bilinear upsamplings), then one conv."""

    def __init__(self, in_channels: Sequence[int], fpn_strides: Sequence[int], feat_channels: int, out_channels: int):
        super().__init__()
        self.fpn_strides = list(fpn_strides)
        self.scale_heads = nn.LayerList()
        for i, stride in enumerate(self.fpn_strides):
            head_length = max(1, int(np.log2(stride) - np.log2(self.fpn_strides[0])))
            head = []
            for k in range(head_length):
                head.append(nn.Sequential(BaseConv(in_channels[i] if k == 0 else feat_channels, feat_channels, 3)))
                if stride != self.fpn_strides[0]:
                    head.append(nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False))
            self.scale_heads.append(nn.Sequential(*head))
        self.output_conv = BaseConv(feat_channels, out_channels, 3)

    def forward(self, feats: List):
        output = self.scale_heads[0](feats[0])
        for i in range(1, len(self.fpn_strides)):
            # PaddleDetection resizes each level to output's size; with input sizes that are
            # multiples of 32 the upsampled level already has it and that resize is the identity
            output = output + self.scale_heads[i](feats[i])
        return self.output_conv(output)


class MaskHybridEncoder(nn.Layer):
    def __init__(self, in_channels: Sequence[int] = (64, 256, 512, 1024), input_size: Tuple[int, int] = (640, 640),
                 hidden_dim: int = 256, use_encoder_idx: Sequence[int] = (1,), num_encoder_layers: int = 1,
                 nhead: int = 8, dim_feedforward: int = 1024, num_prototypes: int = 128, expansion: float = 0.5,
                 depth_mult: float = 1.0, mask_feat_channels: Sequence[int] = (64, 32)):
        super().__init__()
        x4_channels, *level_channels = in_channels
        self.feat_strides = [8, 16, 32]
        self.hidden_dim = hidden_dim
        # indices into the three coarse levels (strides 8, 16, 32). PaddleDetection's config says
        # `use_encoder_idx: [2]` over the four backbone levels and MaskHybridEncoder subtracts one
        # after dropping the stride-4 level: Mask-RT-DETR-S's transformer layer runs on stride 16
        self.use_encoder_idx = list(use_encoder_idx)
        self.input_proj = nn.LayerList([
            nn.Sequential(nn.Conv2D(c, hidden_dim, 1, bias_attr=False), nn.BatchNorm2D(hidden_dim))
            for c in level_channels
        ])
        self.encoder = nn.LayerList([
            TransformerEncoder(num_encoder_layers, d_model=hidden_dim, nhead=nhead, dim_feedforward=dim_feedforward)
            for _ in self.use_encoder_idx
        ])
        num_blocks = round(3 * depth_mult)
        self.lateral_convs = nn.LayerList()
        self.fpn_blocks = nn.LayerList()
        for _ in range(len(level_channels) - 1):
            self.lateral_convs.append(BaseConv(hidden_dim, hidden_dim, 1))
            self.fpn_blocks.append(CSPRepLayer(hidden_dim * 2, hidden_dim, num_blocks, expansion))
        self.downsample_convs = nn.LayerList()
        self.pan_blocks = nn.LayerList()
        for _ in range(len(level_channels) - 1):
            self.downsample_convs.append(BaseConv(hidden_dim, hidden_dim, 3, stride=2))
            self.pan_blocks.append(CSPRepLayer(hidden_dim * 2, hidden_dim, num_blocks, expansion))
        self.mask_feat_head = MaskFeatFPN([hidden_dim] * 3, self.feat_strides, mask_feat_channels[0],
                                          mask_feat_channels[1])
        self.enc_mask_lateral = BaseConv(x4_channels, mask_feat_channels[1], 3)
        self.enc_mask_output = nn.Sequential(
            BaseConv(mask_feat_channels[1], mask_feat_channels[1], 3),
            nn.Conv2D(mask_feat_channels[1], num_prototypes, 1),
        )
        h, w = input_size
        # fixed (eval_size) position embeddings: constants, not state_dict entries
        for i in self.use_encoder_idx:
            stride = self.feat_strides[i]
            embed = sincos_position_embedding(w // stride, h // stride, hidden_dim)
            self.register_buffer(f"pos_embed{i}", paddle.to_tensor(embed), persistable=False)

    def forward(self, feats: List):
        x4_feat, *level_feats = feats
        proj = [self.input_proj[i](f) for i, f in enumerate(level_feats)]
        for i, level in enumerate(self.use_encoder_idx):
            _, _, h, w = proj[level].shape
            tokens = proj[level].reshape([0, self.hidden_dim, h * w]).transpose([0, 2, 1])
            memory = self.encoder[i](tokens, getattr(self, f"pos_embed{level}"))
            proj[level] = memory.transpose([0, 2, 1]).reshape([0, self.hidden_dim, h, w])

        n = len(proj)
        inner_outs = [proj[-1]]
        for idx in range(n - 1, 0, -1):
            high = self.lateral_convs[n - 1 - idx](inner_outs[0])
            inner_outs[0] = high
            up = F.interpolate(high, scale_factor=2.0, mode="nearest")
            inner_outs.insert(0, self.fpn_blocks[n - 1 - idx](paddle.concat([up, proj[idx - 1]], axis=1)))
        outs = [inner_outs[0]]
        for idx in range(n - 1):
            down = self.downsample_convs[idx](outs[-1])
            outs.append(self.pan_blocks[idx](paddle.concat([down, inner_outs[idx + 1]], axis=1)))

        mask_feat = self.mask_feat_head(outs)
        mask_feat = F.interpolate(mask_feat, scale_factor=2, mode="bilinear", align_corners=False)
        mask_feat = mask_feat + self.enc_mask_lateral(x4_feat)
        return outs, self.enc_mask_output(mask_feat)
