"""Seeded random weights for the two networks, shaped so that tests of them mean something.

No pretrained weights are reachable here. Plain random weights give activations that explode,
prototypes that are pixel noise and scores that tie; these keep activations finite, masks mixed
0/1 and scores spread (see each function).
"""
from __future__ import annotations

from typing import Dict, Optional

import export  # noqa: F401  (PIR off before paddle is imported)
import numpy as np
import paddle

from export.networks.ppyoloe_seg import PPYOLOESeg


def random_weights(net: paddle.nn.Layer, seed: int) -> Dict[str, np.ndarray]:
    """Seeded weights with sane scales (fan-in scaled, BN statistics positive) so activations stay finite."""
    rng = np.random.default_rng(seed)
    state = {}
    for name, tensor in net.state_dict().items():
        shape = tuple(tensor.shape)
        if name.endswith("_variance"):
            value = rng.uniform(0.5, 2.0, shape)
        elif name.endswith("_mean"):
            value = rng.normal(0.0, 0.1, shape)
        elif len(shape) == 1 and name.endswith(".weight"):  # 1-D weights are batch/layer-norm scales
            value = rng.uniform(0.5, 1.5, shape)
        elif len(shape) <= 1:
            value = rng.normal(0.0, 0.1, shape)
        else:
            fan_in = int(np.prod(shape[1:])) if len(shape) == 4 else shape[0]
            value = rng.normal(0.0, 1.0 / np.sqrt(fan_in), shape)
        state[name] = value.astype("float32")
    return state


def seeded_state(net: PPYOLOESeg, seed: int, class_shift: float = 0.0, class_gain: float = 1.0,
                 sample: Optional[np.ndarray] = None) -> Dict:
    """Random weights with sane activations; mask coefficients centred so masks are mixed 0/1."""
    rng = np.random.default_rng(seed)
    state = {}
    for name, tensor in net.state_dict().items():
        shape = tuple(tensor.shape)
        if name.endswith("proj_conv.weight"):
            state[name] = tensor.numpy()  # the fixed DFL projection 0..16
        elif name.endswith("._variance") or name.endswith("bn.weight"):
            state[name] = rng.uniform(0.5, 1.5, shape).astype("float32")
        elif name.endswith("._mean"):
            state[name] = rng.normal(0, 0.1, shape).astype("float32")
        elif len(shape) == 4:
            state[name] = rng.normal(0, 1 / np.sqrt(np.prod(shape[1:])), shape).astype("float32")
        else:
            state[name] = rng.normal(0, 0.1, shape).astype("float32")
    for i in range(len(net.yolo_head.pred_cls)):
        state[f"yolo_head.pred_cls.{i}.bias"] += np.float32(class_shift)
        state[f"yolo_head.pred_cls.{i}.weight"] *= np.float32(class_gain)  # spread scores: no near-ties
    _smooth_prototypes(state, rng)
    net.set_state_dict(state)
    net.eval()
    if sample is not None:
        # one bias vector for the coefficients with logits centred on 0 over the sample's prototypes
        with paddle.no_grad():
            protos = net.yolo_head(net.neck(net.backbone(paddle.to_tensor(sample))), net.input_size).protos.numpy()[0]
        flat = protos.reshape(protos.shape[0], -1)
        mean = flat.mean(axis=1)
        direction = rng.normal(0, 1, mean.shape).astype("float64")
        direction -= (direction @ mean) / (mean @ mean) * mean
        direction -= np.median(direction @ flat) / (mean @ mean) * mean  # about half the pixels > 0.5
        q25, q75 = np.quantile(direction @ flat, [0.25, 0.75])
        direction *= 8.0 / (q75 - q25)  # sharp masks: most probabilities near 0 or 1
        for i in range(len(net.yolo_head.pred_ins)):
            state[f"yolo_head.pred_ins.{i}.bias"] = direction.astype("float32")
            state[f"yolo_head.pred_ins.{i}.weight"] *= 0.1
        net.set_state_dict(state)
    return state


def _smooth_prototypes(state: Dict, rng: np.random.Generator) -> None:
    """Make MaskProto low-pass (channel mixing x 3x3 box blur, nearest 2x upsampling, identity BN).

    Random convolutions give prototypes that are noise at the prototype-pixel scale, which no trained
    model has; then the reference's two bilinear resizes and the lowres layout's single resize disagree
    on noise rather than on anything the layout decides.
    """
    box = np.full((3, 3), 1 / 9, "float32")
    w1 = state["yolo_head.proto.conv1.conv.weight"]
    mix = rng.normal(0, 1 / np.sqrt(w1.shape[1]), w1.shape[:2]).astype("float32")
    state["yolo_head.proto.conv1.conv.weight"] = mix[:, :, None, None] * box * 3
    protos = w1.shape[0]
    state["yolo_head.proto.upsample.weight"] = np.eye(protos, dtype="float32")[:, :, None, None] * np.ones((2, 2), "float32")
    state["yolo_head.proto.upsample.bias"] = np.zeros(protos, "float32")
    state["yolo_head.proto.conv2.conv.weight"] = np.eye(protos, dtype="float32")[:, :, None, None] * box
    for conv in ("conv1", "conv2", "conv3"):
        n = state[f"yolo_head.proto.{conv}.bn.weight"].shape[0]
        state[f"yolo_head.proto.{conv}.bn.weight"] = np.ones(n, "float32")
        state[f"yolo_head.proto.{conv}.bn.bias"] = np.zeros(n, "float32")
        state[f"yolo_head.proto.{conv}.bn._mean"] = np.zeros(n, "float32")
        state[f"yolo_head.proto.{conv}.bn._variance"] = np.ones(n, "float32")
