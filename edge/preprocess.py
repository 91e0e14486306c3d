"""Pre-processing built from the model's `Preprocess` list (inference.yml / manifest).

Behaves like PaddleX's detection predictor: the image is read as BGR, a copy is converted to RGB
for the model, the listed ops run in order, and the feeds `im_shape` ([h, w] after Resize),
`image` (1x3xHxW float32) and `scale_factor` ([h_scale, w_scale]) are produced by name.
A new op is one entry in `_BUILDERS`.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable, Dict, List, Mapping, Sequence

import cv2
import numpy as np

from .errors import ModelError
from .spec import ModelSpec

# inference.yml's `interp` codes, as OpenCV flags (PaddleDetection / PaddleX order)
INTERP_CODES = {0: cv2.INTER_NEAREST, 1: cv2.INTER_LINEAR, 2: cv2.INTER_CUBIC, 3: cv2.INTER_AREA, 4: cv2.INTER_LANCZOS4}


def resize_image(img: np.ndarray, new_w: int, new_h: int, interpolation: int, portable: bool = True) -> np.ndarray:
    """`cv2.resize` with OpenCV's own kernels, Intel IPP off for this call (`portable=True`).

    On x86, OpenCV hands 8-bit cubic resizes to IPP, which rounds exact .5 ties its own way (±1 on
    about 2 % of the pixels) and picks its code path per CPU. OpenCV's own kernel is the one the
    Android app's Java core reproduces bit for bit (android_demo/core, OpenCvResize), so the same
    image gives the same tensor on every host and in the app. The IPP switch is per thread.

    `portable=False` is `cv2.resize` as OpenCV dispatches it, which is what PaddleX's predictor runs:
    used for inference directories (the server families), whose results are held to PaddleX's.
    """
    if not portable:
        return cv2.resize(img, (new_w, new_h), interpolation=interpolation)
    use_ipp = cv2.ipp.useIPP()
    if use_ipp:
        cv2.ipp.setUseIPP(False)
    try:
        return cv2.resize(img, (new_w, new_h), interpolation=interpolation)
    finally:
        if use_ipp:
            cv2.ipp.setUseIPP(True)


@dataclass
class _State:
    img: np.ndarray  # HWC until Permute, CHW after
    chw: bool
    im_shape: List[float]  # [h, w] after Resize
    scale_factor: List[float]  # [h_scale, w_scale]


Op = Callable[[_State], None]


def _hw(size: Any) -> List[int]:
    if isinstance(size, int):
        return [size, size]
    return [int(size[0]), int(size[1])]


def _resize(op: Mapping[str, Any], portable: bool = True) -> Op:
    target_h, target_w = _hw(op["target_size"])
    keep_ratio = bool(op.get("keep_ratio", False))
    interp_code = op.get("interp", 1)
    if interp_code not in INTERP_CODES:
        raise ModelError(f"Resize.interp must be one of {sorted(INTERP_CODES)}, got {interp_code!r}")
    interp = INTERP_CODES[interp_code]

    def apply(s: _State) -> None:
        h, w = s.img.shape[:2]
        if keep_ratio:  # PaddleX: scale = min(max(t)/max(img), min(t)/min(img)), sizes rounded
            scale = min(max(target_h, target_w) / max(h, w), min(target_h, target_w) / min(h, w))
            new_h, new_w = round(h * scale), round(w * scale)
        else:
            new_h, new_w = target_h, target_w
        s.img = resize_image(s.img, new_w, new_h, interp, portable)
        s.im_shape = [float(new_h), float(new_w)]
        s.scale_factor = [new_h / h, new_w / w]

    return apply


def _normalize(op: Mapping[str, Any]) -> Op:
    is_scale = bool(op.get("is_scale", True))
    scale = 1.0 / 255.0 if is_scale else 1.0
    # PaddleX treats norm_type "none" like mean_std with the given mean/std (0 and 1 in both edge models)
    # alpha and beta in double precision, then float32, as PaddleX computes them: random-weight
    # RCNN programs turn a 1-ulp input difference into different masks (tools/server_families)
    mean = np.asarray(op.get("mean", [0.0, 0.0, 0.0]), dtype=np.float64).reshape(1, 1, -1)
    std = np.asarray(op.get("std", [1.0, 1.0, 1.0]), dtype=np.float64).reshape(1, 1, -1)
    if np.any(std == 0):
        raise ModelError("NormalizeImage.std must not contain 0")
    alpha = (scale / std).astype(np.float32)
    beta = (-mean / std).astype(np.float32)

    def apply(s: _State) -> None:
        img = s.img.astype(np.float32)
        img *= alpha
        img += beta
        s.img = img

    return apply


def _permute(op: Mapping[str, Any]) -> Op:
    def apply(s: _State) -> None:
        s.img = np.ascontiguousarray(s.img.transpose(2, 0, 1))
        s.chw = True

    return apply


def _pad_to(s: _State, pad_h: int, pad_w: int, fill: Sequence[float]) -> None:
    img = s.img
    if s.chw:
        c, h, w = img.shape
        canvas = np.empty((c, max(pad_h, h), max(pad_w, w)), dtype=np.float32)
        canvas[...] = np.asarray(fill, dtype=np.float32).reshape(-1, 1, 1)
        canvas[:, :h, :w] = img
    else:
        h, w, c = img.shape
        canvas = np.empty((max(pad_h, h), max(pad_w, w), c), dtype=np.float32)
        canvas[...] = np.asarray(fill, dtype=np.float32).reshape(1, 1, -1)
        canvas[:h, :w, :] = img
    s.img = canvas


def _pad(op: Mapping[str, Any]) -> Op:
    pad_h, pad_w = _hw(op["size"])
    fill = op.get("fill_value", [127.5, 127.5, 127.5])  # PaddleDetection's default

    def apply(s: _State) -> None:
        _pad_to(s, pad_h, pad_w, fill)

    return apply


def _pad_stride(op: Mapping[str, Any]) -> Op:
    stride = int(op.get("stride", 0))

    def apply(s: _State) -> None:
        if stride <= 0:
            return
        h, w = (s.img.shape[1:] if s.chw else s.img.shape[:2])
        _pad_to(s, math.ceil(h / stride) * stride, math.ceil(w / stride) * stride, [0.0, 0.0, 0.0])

    return apply


_BUILDERS: Dict[str, Callable[[Mapping[str, Any]], Op]] = {
    "Resize": _resize,
    "NormalizeImage": _normalize,
    "Permute": _permute,
    "Pad": _pad,
    "PadStride": _pad_stride,
}


class Preprocessor:
    """Turns a BGR image into the model's named feeds.

    `portable_resize`: True (bundles, the Android app) resizes with OpenCV's own kernel on every
    host; False (inference directories) resizes as PaddleX does, with OpenCV's default dispatch
    (Intel IPP on x86). See docs/DIFFERENCES.md.
    """

    def __init__(self, spec: ModelSpec, portable_resize: bool = True):
        self.input_names = spec.input_names
        self.portable_resize = portable_resize
        self._ops: List[Op] = []
        for op in spec.preprocess:
            kind = op.get("type")
            if kind not in _BUILDERS:
                raise ModelError(
                    f"pre-processing op {kind!r} of model {spec.model_name!r} is not supported "
                    f"(supported: {', '.join(_BUILDERS)})"
                )
            self._ops.append(_resize(op, portable_resize) if kind == "Resize" else _BUILDERS[kind](op))

    def __call__(self, image_bgr: np.ndarray) -> Dict[str, np.ndarray]:
        h, w = image_bgr.shape[:2]
        state = _State(cv2.cvtColor(image_bgr, cv2.COLOR_BGR2RGB), False, [float(h), float(w)], [1.0, 1.0])
        for op in self._ops:
            op(state)
        img = state.img if state.chw else state.img.transpose(2, 0, 1)
        im_shape_name, image_name, scale_name = self.input_names
        return {
            im_shape_name: np.asarray([state.im_shape], dtype=np.float32),
            image_name: np.ascontiguousarray(img[None], dtype=np.float32),
            scale_name: np.asarray([state.scale_factor], dtype=np.float32),
        }
