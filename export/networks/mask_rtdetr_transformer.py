"""MaskRTDETR transformer (PaddleDetection ppdet/modeling/transformers/mask_rtdetr_transformer.py), inference only.

IoU-aware query selection picks the `num_queries` best encoder tokens, mask-enhanced anchor boxes
(boxes around each selected query's mask) initialise the reference points, and six decoder layers
(self-attention + multi-scale deformable attention via grid_sample) refine them. Returns the last
layer's boxes (cxcywh, 0..1), class logits and mask-query embeddings; the caller turns the chosen
queries' embeddings into masks against the prototypes.

Two formulations of the query selection (`edge`): PaddleDetection's (BOOL anchor-valid mask in
`where`, `gather_nd`, `mask.any`, `bmm`) and an equivalent one for Paddle Lite (a float valid
mask multiplied in, `gather` on a squeezed batch, max/min over row/column profiles of the mask,
`matmul`), with no BOOL constants, no 0-D tensors and no control flow.
"""
from __future__ import annotations

from typing import List, Sequence, Tuple

import numpy as np
import paddle
import paddle.nn as nn
import paddle.nn.functional as F

from .mask_hybrid_encoder import MultiHeadAttention


def inverse_sigmoid(x, eps: float = 1e-5):
    x = x.clip(min=0.0, max=1.0)
    return paddle.log(x.clip(min=eps) / (1 - x).clip(min=eps))


class MLP(nn.Layer):
    def __init__(self, input_dim: int, hidden_dim: int, output_dim: int, num_layers: int):
        super().__init__()
        dims = [hidden_dim] * (num_layers - 1)
        self.layers = nn.LayerList([nn.Linear(n, k) for n, k in zip([input_dim] + dims, dims + [output_dim])])

    def forward(self, x):
        last = len(self.layers) - 1
        for i, layer in enumerate(self.layers):
            x = layer(x) if i == last else F.relu(layer(x))
        return x


class MSDeformableAttention(nn.Layer):
    """Multi-scale deformable attention with box reference points, sampled with grid_sample."""

    def __init__(self, embed_dim: int, num_heads: int, num_levels: int, num_points: int,
                 spatial_shapes: Sequence[Tuple[int, int]]):
        super().__init__()
        self.embed_dim, self.num_heads = embed_dim, num_heads
        self.num_levels, self.num_points = num_levels, num_points
        self.head_dim = embed_dim // num_heads
        self.spatial_shapes = [tuple(s) for s in spatial_shapes]
        total_points = num_heads * num_levels * num_points
        self.sampling_offsets = nn.Linear(embed_dim, total_points * 2)
        self.attention_weights = nn.Linear(embed_dim, total_points)
        self.value_proj = nn.Linear(embed_dim, embed_dim)
        self.output_proj = nn.Linear(embed_dim, embed_dim)

    def forward(self, query, reference_points, value):
        """query [1, Lq, C]; reference_points [1, Lq, 4] (cxcywh, 0..1); value [1, Lv, C]."""
        nh, hd, nl, npt = self.num_heads, self.head_dim, self.num_levels, self.num_points
        len_q = query.shape[1]
        value = self.value_proj(value).reshape([1, -1, nh, hd])
        offsets = self.sampling_offsets(query).reshape([1, len_q, nh, nl, npt, 2])
        weights = F.softmax(self.attention_weights(query).reshape([1, len_q, nh, nl * npt]))
        weights = weights.reshape([1, len_q, nh, nl, npt])
        ref = reference_points.reshape([1, len_q, 1, 1, 1, 4])
        locations = ref[:, :, :, :, :, :2] + offsets / float(npt) * ref[:, :, :, :, :, 2:] * 0.5
        grids = 2 * locations - 1

        values = paddle.split(value, [h * w for h, w in self.spatial_shapes], axis=1)
        sampled = []
        for level, (h, w) in enumerate(self.spatial_shapes):
            # [1, hw, nh, hd] -> [nh, hd, h, w]
            value_l = values[level].reshape([1, h * w, nh * hd]).transpose([0, 2, 1]).reshape([nh, hd, h, w])
            # [1, Lq, nh, P, 2] -> [nh, Lq, P, 2]
            grid_l = grids[:, :, :, level].transpose([0, 2, 1, 3, 4]).reshape([nh, len_q, npt, 2])
            sampled.append(F.grid_sample(value_l, grid_l, mode="bilinear", padding_mode="zeros", align_corners=False))
        weights = weights.transpose([0, 2, 1, 3, 4]).reshape([nh, 1, len_q, nl * npt])
        out = (paddle.stack(sampled, axis=-2).reshape([nh, hd, len_q, nl * npt]) * weights).sum(-1)
        out = out.reshape([1, nh * hd, len_q]).transpose([0, 2, 1])
        return self.output_proj(out)


class TransformerDecoderLayer(nn.Layer):
    def __init__(self, d_model: int, n_head: int, dim_feedforward: int, n_levels: int, n_points: int,
                 spatial_shapes: Sequence[Tuple[int, int]]):
        super().__init__()
        self.self_attn = MultiHeadAttention(d_model, n_head)
        self.norm1 = nn.LayerNorm(d_model)
        self.cross_attn = MSDeformableAttention(d_model, n_head, n_levels, n_points, spatial_shapes)
        self.norm2 = nn.LayerNorm(d_model)
        self.linear1 = nn.Linear(d_model, dim_feedforward)
        self.linear2 = nn.Linear(dim_feedforward, d_model)
        self.norm3 = nn.LayerNorm(d_model)

    def forward(self, tgt, reference_points, memory, query_pos_embed):
        q = k = tgt + query_pos_embed
        tgt = self.norm1(tgt + self.self_attn(q, k, tgt))
        tgt = self.norm2(tgt + self.cross_attn(tgt + query_pos_embed, reference_points, memory))
        return self.norm3(tgt + self.linear2(F.relu(self.linear1(tgt))))


class MaskTransformerDecoder(nn.Layer):
    def __init__(self, num_layers: int, **layer_args):
        super().__init__()
        self.layers = nn.LayerList([TransformerDecoderLayer(**layer_args) for _ in range(num_layers)])

    def forward(self, tgt, ref_points_unact, memory, bbox_head, query_pos_head):
        output = tgt
        ref_points = F.sigmoid(ref_points_unact)
        for layer in self.layers:
            output = layer(output, ref_points, memory, query_pos_head(ref_points))
            ref_points = F.sigmoid(bbox_head(output) + inverse_sigmoid(ref_points))
        return output, ref_points


def anchor_valid_mask(spatial_shapes: Sequence[Tuple[int, int]], eps: float = 1e-2, grid_size: float = 0.05) -> np.ndarray:
    """[1, sum(h*w), 1] float32 1/0: which encoder tokens' anchors lie inside (eps, 1 - eps).

    Same float32 arithmetic as PaddleDetection's `_generate_anchors`, including its quirk of
    dividing x by h and y by w.
    """
    masks = []
    for lvl, (h, w) in enumerate(spatial_shapes):
        grid_y, grid_x = np.meshgrid(np.arange(h, dtype=np.float32), np.arange(w, dtype=np.float32), indexing="ij")
        xy = (np.stack([grid_x, grid_y], -1) + np.float32(0.5)) / np.array([h, w], dtype=np.float32)
        wh = np.ones_like(xy) * np.float32(grid_size) * np.float32(2.0 ** lvl)
        anchors = np.concatenate([xy, wh], -1).reshape(-1, 4)
        masks.append(((anchors > eps) & (anchors < 1 - eps)).all(-1))
    return np.concatenate(masks).astype(np.float32).reshape(1, -1, 1)


class MaskRTDETRTransformer(nn.Layer):
    """Parameter names as PaddleDetection's MaskRTDETR (prefix `transformer.` in the full model)."""

    def __init__(self, num_classes: int = 80, hidden_dim: int = 256, num_queries: int = 300,
                 feat_channels: Sequence[int] = (256, 256, 256), feat_strides: Sequence[int] = (8, 16, 32),
                 input_size: Tuple[int, int] = (640, 640), num_prototypes: int = 128, num_levels: int = 3,
                 num_decoder_points: int = 4, nhead: int = 8, num_decoder_layers: int = 6,
                 dim_feedforward: int = 1024, edge: bool = False):
        super().__init__()
        self.hidden_dim, self.num_queries, self.num_classes = hidden_dim, num_queries, num_classes
        self.edge = edge
        h, w = input_size
        self.spatial_shapes: List[Tuple[int, int]] = [(h // s, w // s) for s in feat_strides]
        self.input_proj = nn.LayerList([
            nn.Sequential(("conv", nn.Conv2D(c, hidden_dim, 1, bias_attr=False)), ("norm", nn.BatchNorm2D(hidden_dim)))
            for c in feat_channels
        ])
        self.decoder = MaskTransformerDecoder(
            num_decoder_layers, d_model=hidden_dim, n_head=nhead, dim_feedforward=dim_feedforward,
            n_levels=num_levels, n_points=num_decoder_points, spatial_shapes=self.spatial_shapes,
        )
        # training-only (denoising queries), kept so trained weights load strictly
        self.denoising_class_embed = nn.Embedding(num_classes, hidden_dim)
        self.query_pos_head = MLP(4, 2 * hidden_dim, hidden_dim, num_layers=2)
        self.mask_query_head = MLP(hidden_dim, hidden_dim, num_prototypes, num_layers=3)
        self.enc_output = nn.Sequential(nn.Linear(hidden_dim, hidden_dim), nn.LayerNorm(hidden_dim))
        self.dec_norm = nn.LayerNorm(hidden_dim)
        self.score_head = nn.Linear(hidden_dim, num_classes)
        self.bbox_head = MLP(hidden_dim, hidden_dim, 4, num_layers=3)

        valid = anchor_valid_mask(self.spatial_shapes)
        # constants of the graph, not state_dict entries; the edge graph never holds a BOOL one
        self._valid_float = paddle.to_tensor(valid)
        if not edge:
            self._valid_bool = paddle.to_tensor(valid.astype(bool))
        mh, mw = h // 4, w // 4
        self._mask_x = paddle.to_tensor(np.arange(mw, dtype=np.float32))
        self._mask_y = paddle.to_tensor(np.arange(mh, dtype=np.float32))
        self._mask_norm = paddle.to_tensor(np.array([mw, mh, mw, mh], dtype=np.float32))

    def mask_queries(self, query_embed):
        """Prototype coefficients of each query: mask_query_head(dec_norm(q))."""
        return self.mask_query_head(self.dec_norm(query_embed))

    def forward(self, enc_feats: List, mask_feat):
        """Returns boxes [1, Q, 4] (cxcywh), logits [1, Q, C], mask-query coefficients [1, Q, P]."""
        memory = paddle.concat([
            self.input_proj[i](f).reshape([0, self.hidden_dim, -1]).transpose([0, 2, 1]) for i, f in enumerate(enc_feats)
        ], axis=1)
        target, ref_unact = self._select_queries(memory, mask_feat)
        output, boxes = self.decoder(target, ref_unact, memory, self.bbox_head, self.query_pos_head)
        return boxes, self.score_head(self.dec_norm(output)), self.mask_queries(output)

    def _select_queries(self, memory, mask_feat):
        hidden, nq = self.hidden_dim, self.num_queries
        _, num_protos, mh, mw = mask_feat.shape
        if self.edge:
            output_memory = self.enc_output(memory * self._valid_float)
            scores = self.score_head(output_memory).max(-1)  # [1, N]
            _, topk_ind = paddle.topk(scores, nq, axis=1)
            target = paddle.gather(output_memory.reshape([-1, hidden]), topk_ind.reshape([nq])).reshape([1, nq, hidden])
            coeffs = self.mask_queries(target)
            enc_masks = paddle.matmul(coeffs, mask_feat.reshape([1, num_protos, mh * mw])).reshape([1, nq, mh, mw])
            boxes = self._mask_boxes_edge(enc_masks)
        else:
            output_memory = self.enc_output(paddle.where(self._valid_bool, memory, paddle.to_tensor(0.0)))
            scores = self.score_head(output_memory).max(-1)
            _, topk_ind = paddle.topk(scores, nq, axis=1)
            batch_ind = paddle.arange(end=1).astype(topk_ind.dtype).unsqueeze(-1).tile([1, nq])
            topk_ind = paddle.stack([batch_ind, topk_ind], axis=-1)
            target = paddle.gather_nd(output_memory, topk_ind)
            coeffs = self.mask_queries(target)
            enc_masks = paddle.bmm(coeffs, mask_feat.flatten(2)).reshape([1, nq, mh, mw])
            boxes = self._mask_boxes_reference(enc_masks > 0)
        return target, inverse_sigmoid(boxes)

    def _mask_boxes_reference(self, mask):
        """utils.mask_to_box_coordinate(mask, normalize=True, format='xywh') as PaddleDetection writes it."""
        h, w = mask.shape[-2:]
        y, x = paddle.meshgrid(paddle.arange(end=h, dtype="float32"), paddle.arange(end=w, dtype="float32"))
        x_mask = x * mask.astype(x.dtype)
        x_max = x_mask.flatten(-2).max(-1) + 1
        x_min = paddle.where(mask, x_mask, paddle.to_tensor(1e8)).flatten(-2).min(-1)
        y_mask = y * mask.astype(y.dtype)
        y_max = y_mask.flatten(-2).max(-1) + 1
        y_min = paddle.where(mask, y_mask, paddle.to_tensor(1e8)).flatten(-2).min(-1)
        box = paddle.stack([x_min, y_min, x_max, y_max], axis=-1)
        box = box * mask.any(axis=[2, 3]).unsqueeze(2).astype(box.dtype)
        box = box / self._mask_norm
        x1, y1, x2, y2 = box.split(4, axis=-1)
        return paddle.concat([(x1 + x2) / 2, (y1 + y2) / 2, (x2 - x1), (y2 - y1)], axis=-1)

    def _mask_boxes_edge(self, mask_logits):
        """The same boxes from row/column profiles of the mask: no BOOL tensors, no where."""
        zero = paddle.full([1], 0.0, dtype="float32")  # shape [1]: a bare 0 would be a 0-D constant
        mask = (mask_logits > zero).astype("float32")
        cols = mask.max(axis=2)  # [1, Q, W]: column has a mask pixel
        rows = mask.max(axis=3)  # [1, Q, H]
        x_max = (cols * self._mask_x).max(-1) + 1
        x_min = (self._mask_x + (1 - cols) * 1e8).min(-1)
        y_max = (rows * self._mask_y).max(-1) + 1
        y_min = (self._mask_y + (1 - rows) * 1e8).min(-1)
        box = paddle.stack([x_min, y_min, x_max, y_max], axis=-1) * cols.max(-1, keepdim=True)
        box = box / self._mask_norm
        x1, y1, x2, y2 = box.split(4, axis=-1)
        return paddle.concat([(x1 + x2) * 0.5, (y1 + y2) * 0.5, (x2 - x1), (y2 - y1)], axis=-1)
