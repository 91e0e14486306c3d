"""What travels over the wire, for the server (`edge serve`) and its client (`edge.remote`) alike:
the endpoint paths, box-cropped masks as COCO RLE, images as Base64.

PaddleX's contract: `POST /instance-segmentation`, `GET /health`; `rleResult` is the `counts` of `pycocotools.mask.encode` on the
Fortran-ordered uint8 box-cropped mask, decoded as UTF-8, and `size` is that crop's [h, w].
This module needs only numpy, OpenCV and pycocotools, so a board can decode server answers.
"""
from __future__ import annotations

import base64
import binascii
import io
import re
from typing import Dict, List, Sequence

import cv2
import numpy as np
import pycocotools.mask as mask_util

from ..errors import InputError

INFER_PATH = "/instance-segmentation"
HEALTH_PATH = "/health"

_DATA_URI = re.compile(r"^data:[\w.+-]+/[\w.+-]+;base64,", re.IGNORECASE)
_WHITESPACE = re.compile(r"\s+")


def endpoint_url(url: str) -> str:
    """`http://host:8080` or `http://host:8080/instance-segmentation` -> the inference endpoint."""
    base = url.rstrip("/")
    return base if base.endswith(INFER_PATH) else base + INFER_PATH


def encode_mask(mask: np.ndarray) -> Dict[str, object]:
    """`{rleResult, size}` of one box-cropped 0/1 mask."""
    crop = np.asfortranarray(np.asarray(mask, dtype=np.uint8).reshape(mask.shape[0], mask.shape[1], 1))
    rle = mask_util.encode(crop)[0]
    return {"rleResult": rle["counts"].decode("utf-8"), "size": [int(mask.shape[0]), int(mask.shape[1])]}


def decode_mask(rle_result: str, size: Sequence[int]) -> np.ndarray:
    """The C-ordered uint8 0/1 mask of shape `size` that `encode_mask` encoded."""
    height, width = (int(v) for v in size)
    decoded = mask_util.decode({"size": [height, width], "counts": rle_result.encode("utf-8")})
    return np.ascontiguousarray(decoded, dtype=np.uint8)


def encode_instances(boxes: List[dict], masks: Sequence[np.ndarray]) -> List[dict]:
    """A result's boxes and masks as the contract's `instances`."""
    return [
        {
            "bbox": [float(v) for v in box["coordinate"]],
            "categoryId": int(box["cls_id"]),
            "categoryName": str(box["label"]),
            "score": float(box["score"]),
            "mask": encode_mask(mask),
        }
        for box, mask in zip(boxes, masks)
    ]


def decode_base64(data: str, source: str = "image") -> bytes:
    """Strict Base64 (whitespace and a `data:<type>;base64,` prefix tolerated).

    PaddleX decodes leniently and silently drops characters outside the alphabet; a wrong
    string then fails later as a mysterious undecodable image. Here it fails with its cause.
    """
    text = _WHITESPACE.sub("", _DATA_URI.sub("", data, count=1))
    if not text:
        raise InputError(source, "the Base64 string is empty; send the image file's bytes in Base64, or an http(s) URL")
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError) as err:
        raise InputError(
            source, f"neither an http(s) URL nor valid Base64 ({err}); send base64.b64encode(<file bytes>) as text"
        ) from None


def encode_jpeg_base64(picture) -> str:
    """A PIL image as Base64 JPEG (PIL's default quality, as PaddleX)."""
    buffer = io.BytesIO()
    picture.convert("RGB").save(buffer, format="JPEG")
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def encode_png_base64(image_bgr: np.ndarray) -> str:
    """A BGR image as lossless Base64 PNG: the server decodes exactly these pixels."""
    ok, data = cv2.imencode(".png", image_bgr, [cv2.IMWRITE_PNG_COMPRESSION, 1])
    if not ok:
        raise InputError("<numpy array>", "the image cannot be encoded as PNG")
    return base64.b64encode(data.tobytes()).decode("ascii")
