"""Draw instance-segmentation results the way PaddleX does, minus PaddleX's bugs.

The look follows PaddleX's ``InstanceSegResult`` (``draw_mask`` then ``draw_box``):

* colours: PaddleX's 20-colour map (``COLORMAP``), RGB;
* masks: the class colour lightened, ``light = floor(c * (1 - W_RATIO) + W_RATIO * 255)``, then
  blended, ``out = floor(pixel * (1 - MASK_ALPHA) + MASK_ALPHA * light)`` on every mask pixel;
* boxes: the unlightened class colour, width ``max(1, int(max(w, h) * 0.002))``;
* labels: ``"{label} {score:.2f}"`` at font size ``int(0.018 * w) + 2`` on a filled box in the
  class colour above the box, or just inside its top edge when there is no room above;
  white text on the dark colours of the map, dark (#140E35) text on the others.

Where PaddleX is wrong we differ on purpose:

* PaddleX draws on the BGR array as if it were RGB, so red classes come out blue. We convert
  to RGB first: the colours in the picture are the colours of the map.
* PaddleX picks a colour by the order in which a class first appears and lightens the shared
  colour array in place once per instance, so the n-th instance of a class is paler than the
  first. We index the map by ``cls_id % 20`` and lighten once: every instance of a class has
  the same colour, in every picture.
* PaddleX downloads a font at run time. We use Pillow's bundled scalable font
  (``ImageFont.load_default(size=...)``, Pillow >= 10.1 with FreeType), so nothing is fetched.
  Without FreeType, Pillow's fixed bitmap font is used.

Masks arrive CROPPED to their box (``full[round(y1):round(y2), round(x1):round(x2)]``) and are
pasted back at ``(round(x1), round(y1))``; blending touches only the pixels inside each box.
"""
from __future__ import annotations

import functools
import logging
from typing import Dict, List, Sequence, Tuple

import cv2
import numpy as np
from PIL import Image, ImageDraw, ImageFont

logger = logging.getLogger(__name__)

COLORMAP: Tuple[Tuple[int, int, int], ...] = tuple(
    (int(h[0:2], 16), int(h[2:4], 16), int(h[4:6], 16))
    for h in (
        "FF0000 CCFF00 00FF66 0066FF CC00FF FF4D00 80FF00 00FFB2 001AFF FF00E5 "
        "FF9900 33FF00 00FFFF 3300FF FF0099 FFE500 00FF1A 00B2FF 8000FF FF004D"
    ).split()
)
# Indices of the map whose colour is dark enough for white text (PaddleX's font_colormap).
_LIGHT_TEXT_INDICES = frozenset({0, 3, 4, 8, 9, 13, 14, 18, 19})
_DARK_TEXT = (0x14, 0x0E, 0x35)
_LIGHT_TEXT = (0xFF, 0xFF, 0xFF)

MASK_ALPHA = 0.7
W_RATIO = 0.4


def class_color(cls_id: int) -> Tuple[int, int, int]:
    """The RGB colour of a class: the same for every instance of it."""
    return COLORMAP[int(cls_id) % len(COLORMAP)]


def mask_color(cls_id: int) -> Tuple[int, int, int]:
    """The class colour lightened towards white by ``W_RATIO``, as used to fill masks."""
    return tuple(int(c * (1 - W_RATIO) + W_RATIO * 255) for c in class_color(cls_id))  # type: ignore[return-value]


def text_color(cls_id: int) -> Tuple[int, int, int]:
    return _LIGHT_TEXT if int(cls_id) % len(COLORMAP) in _LIGHT_TEXT_INDICES else _DARK_TEXT


@functools.lru_cache(maxsize=16)
def label_font(size: int) -> ImageFont.ImageFont:
    """Pillow's bundled font at ``size`` pixels; no download, no system font needed."""
    try:
        return ImageFont.load_default(size=size)
    except (TypeError, ImportError, OSError):  # old Pillow or no FreeType: fixed-size bitmap font
        logger.debug("scalable default font unavailable; using the bitmap font")
        return ImageFont.load_default()


def draw_instances(image_bgr: np.ndarray, boxes: List[Dict], masks: Sequence[np.ndarray]) -> Image.Image:
    """Masks, boxes and labels of one result on a copy of ``image_bgr``; returns an RGB image."""
    if image_bgr.ndim == 2:
        rgb = cv2.cvtColor(image_bgr, cv2.COLOR_GRAY2RGB)
    else:
        rgb = cv2.cvtColor(image_bgr[:, :, :3], cv2.COLOR_BGR2RGB)
    if masks is not None and len(masks):
        if len(masks) != len(boxes):
            raise ValueError(f"{len(masks)} masks for {len(boxes)} boxes; there must be one mask per box")
        for box, mask in zip(boxes, masks):
            _blend_mask(rgb, box, mask)
    picture = Image.fromarray(rgb)
    if boxes:
        _draw_boxes(picture, boxes)
    return picture


def _blend_mask(rgb: np.ndarray, box: Dict, mask: np.ndarray) -> None:
    """Blend one box-cropped mask into ``rgb`` in place, touching only its box."""
    mask = np.asarray(mask)
    if mask.ndim != 2 or mask.size == 0:
        return
    height, width = rgb.shape[:2]
    x0, y0 = (int(round(float(v))) for v in box["coordinate"][:2])
    # the part of the mask that lies inside the image
    top, left = max(0, -y0), max(0, -x0)
    bottom = min(mask.shape[0], height - y0)
    right = min(mask.shape[1], width - x0)
    if bottom <= top or right <= left:
        return
    selected = (mask[top:bottom, left:right] > 0).view(np.uint8)
    region = rgb[y0 + top : y0 + bottom, x0 + left : x0 + right]
    blended = cv2.LUT(region, _blend_table(int(box["cls_id"]) % len(COLORMAP)))
    cv2.copyTo(blended, selected, region)  # writes into the view, i.e. into rgb


@functools.lru_cache(maxsize=len(COLORMAP))
def _blend_table(color_index: int) -> np.ndarray:
    """``out = floor(p * (1 - MASK_ALPHA) + MASK_ALPHA * light)`` for every byte p, per channel.

    A 256-entry table per class makes blending a lookup (cv2.LUT), several times faster than
    float arithmetic on the masked pixels, and exact to the formula.
    """
    light = np.asarray(mask_color(color_index), np.float64)
    values = np.arange(256, dtype=np.float64)[:, None] * (1 - MASK_ALPHA) + MASK_ALPHA * light[None, :]
    return np.floor(values).astype(np.uint8).reshape(256, 1, 3)


def _draw_boxes(picture: Image.Image, boxes: List[Dict]) -> None:
    width, height = picture.size
    thickness = max(1, int(max(width, height) * 0.002))
    font = label_font(int(0.018 * width) + 2)
    draw = ImageDraw.Draw(picture)
    for box in boxes:
        x1, y1, x2, y2 = (float(v) for v in box["coordinate"][:4])
        color = class_color(box["cls_id"])
        draw.line([(x1, y1), (x1, y2), (x2, y2), (x2, y1), (x1, y1)], width=thickness, fill=color)
        text = f"{box['label']} {float(box['score']):.2f}"
        left, top, right, bottom = draw.textbbox((0, 0), text, font=font)
        text_w, text_h = right - left, bottom - top + 4
        # PaddleX's label box; the glyphs are placed 2 px inside it whatever the font's metrics
        label_top = y1 if y1 < text_h else y1 - text_h  # no room above: just under the top edge
        draw.rectangle([(x1, label_top), (x1 + text_w + 4, label_top + text_h + 1)], fill=color)
        draw.text((x1 + 2 - left, label_top + 2 - top), text, fill=text_color(box["cls_id"]), font=font)
