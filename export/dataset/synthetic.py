"""Seeded synthetic instance-segmentation data in COCO format (the demo model's dataset).

Each image holds one to a few shapes of five classes painted over a textured background with
clutter. Shapes are painted back to front, so a shape's mask is the part of it that is still
VISIBLE once every later shape is painted (holes of rings included); its area and box are
recomputed from that visible part, and a shape hidden completely is dropped. Placement is
retried when it would hide most of an earlier shape, so nearly-invisible slivers are rare.

Layout written by `generate(out_dir, ..., split_name=s)`:

    <out_dir>/<s>/images/000001.png ...      (COCO `file_name` is the bare name)
    <out_dir>/<s>/annotations.json           (COCO: images, annotations with RLE, categories)

Every image draws from its own random stream derived from (seed, split name, index), so the
same seed gives byte-identical annotations and images, and splits never share an image.
Run `python -m export.dataset --out output/synth` to write the demo splits.
"""
from __future__ import annotations

import argparse
import json
import logging
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Sequence, Tuple

import cv2
import numpy as np
from pycocotools import mask as mask_utils

from edge.errors import ConfigError

logger = logging.getLogger(__name__)

CATEGORY_NAMES: Tuple[str, ...] = ("circle", "rectangle", "triangle", "star", "ring")
IMAGES_DIRNAME = "images"
ANNOTATIONS_FILENAME = "annotations.json"
IMAGE_FORMATS = ("png", "jpg")
GENERATOR_VERSION = 1

# An earlier shape must keep at least this share of its pixels visible, or the new shape is
# moved; a shape whose visible part falls below MIN_VISIBLE_PIXELS is not annotated.
MIN_VISIBLE_FRACTION = 0.35
MIN_VISIBLE_PIXELS = 12
PLACEMENT_TRIES = 8


@dataclass
class PlacedShape:
    """One painted shape: its class and its whole mask, before later shapes cover it."""

    category_id: int
    mask: np.ndarray  # uint8 0/1, full image size: the whole shape, before occlusion


def _stream(seed: int, split_name: str, index: int) -> np.random.Generator:
    split_key = zlib.crc32(split_name.encode("utf-8"))  # stable across runs, unlike hash()
    return np.random.default_rng(np.random.SeedSequence([seed, split_key, index]))


def _gaussian(rng: np.random.Generator, shape: Tuple[int, ...], sigma: float) -> np.ndarray:
    # float32 draws are several times faster than rng.normal's float64 ones
    return rng.standard_normal(size=shape, dtype=np.float32) * np.float32(sigma)


def _random_colour(rng: np.random.Generator) -> np.ndarray:
    return rng.integers(0, 256, size=3).astype(np.float32)


def _distinct_colour(rng: np.random.Generator, avoid: np.ndarray, min_distance: float = 90.0) -> np.ndarray:
    """A colour at least `min_distance` (L1 over BGR) from `avoid`, so shapes stay findable."""
    colour = _random_colour(rng)
    for _ in range(10):
        if float(np.abs(colour - avoid).sum()) >= min_distance:
            break
        colour = _random_colour(rng)
    return colour


def _linear_gradient(rng: np.random.Generator, h: int, w: int, c0: np.ndarray, c1: np.ndarray) -> np.ndarray:
    angle = rng.uniform(0, 2 * np.pi)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    t = xx * np.cos(angle) + yy * np.sin(angle)
    t = (t - t.min()) / max(float(t.max() - t.min()), 1.0)
    return c0[None, None, :] * (1 - t[..., None]) + c1[None, None, :] * t[..., None]


def _texture(rng: np.random.Generator, h: int, w: int, base: np.ndarray) -> np.ndarray:
    """A float32 (h, w, 3) fill: solid, stripes, noise or gradient around `base`."""
    kind = rng.integers(0, 4)
    if kind == 0:
        return np.broadcast_to(base, (h, w, 3)).astype(np.float32)
    if kind == 1:
        other = np.clip(base + rng.uniform(-70, 70, size=3), 0, 255)
        angle = rng.uniform(0, np.pi)
        period = rng.uniform(4, 12)
        yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
        phase = (xx * np.cos(angle) + yy * np.sin(angle)) * (2 * np.pi / period)
        t = (np.sin(phase) > 0).astype(np.float32)[..., None]
        return base * (1 - t) + other * t
    if kind == 2:
        return base + _gaussian(rng, (h, w, 3), rng.uniform(8, 25))
    other = np.clip(base + rng.uniform(-90, 90, size=3), 0, 255)
    return _linear_gradient(rng, h, w, base, other)


def _background(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """Gradient or smooth noise, plus pixel noise and clutter (thin lines, dots)."""
    if rng.random() < 0.5:
        image = _linear_gradient(rng, h, w, _random_colour(rng), _random_colour(rng))
    else:
        grid = rng.uniform(0, 255, size=(int(rng.integers(2, 6)), int(rng.integers(2, 6)), 3))
        image = cv2.resize(grid.astype(np.float32), (w, h), interpolation=cv2.INTER_CUBIC)
    image = image + _gaussian(rng, (h, w, 3), rng.uniform(0, 10))
    image = np.clip(image, 0, 255).astype(np.uint8)
    for _ in range(int(rng.integers(0, 12))):
        colour = tuple(int(v) for v in rng.integers(0, 256, size=3))
        if rng.random() < 0.6:
            p0 = (int(rng.integers(0, w)), int(rng.integers(0, h)))
            p1 = (int(rng.integers(0, w)), int(rng.integers(0, h)))
            cv2.line(image, p0, p1, colour, int(rng.integers(1, 3)))
        else:
            centre = (int(rng.integers(0, w)), int(rng.integers(0, h)))
            cv2.circle(image, centre, int(rng.integers(1, 4)), colour, -1)
    return image


def _polygon(centre: np.ndarray, radii: np.ndarray, angles: np.ndarray, rotation: float) -> np.ndarray:
    a = angles + rotation
    points = centre[None, :] + np.stack([radii * np.cos(a), radii * np.sin(a)], axis=1)
    return np.round(points).astype(np.int32)


def _shape_mask(rng: np.random.Generator, category: str, h: int, w: int, size: float) -> np.ndarray:
    """Full (unoccluded) 0/1 mask of one shape of `size` px across, somewhere in the image."""
    mask = np.zeros((h, w), np.uint8)
    r = size / 2
    # The centre may sit a little outside the image so that shapes get cut by its border.
    centre = np.array([rng.uniform(-0.2 * r, w + 0.2 * r), rng.uniform(-0.2 * r, h + 0.2 * r)])
    rotation = rng.uniform(0, 2 * np.pi)
    c = (int(round(centre[0])), int(round(centre[1])))
    if category == "circle":
        cv2.circle(mask, c, max(int(round(r)), 2), 1, -1)
    elif category == "rectangle":
        aspect = rng.uniform(0.45, 1.0)
        box = cv2.boxPoints(((centre[0], centre[1]), (size, size * aspect), np.degrees(rotation)))
        cv2.fillPoly(mask, [np.round(box).astype(np.int32)], 1)
    elif category == "triangle":
        angles = np.array([0, 2 * np.pi / 3, 4 * np.pi / 3]) + rng.uniform(-0.25, 0.25, size=3)
        cv2.fillPoly(mask, [_polygon(centre, np.full(3, r), angles, rotation)], 1)
    elif category == "star":
        inner = rng.uniform(0.38, 0.5)
        angles = np.arange(10) * (np.pi / 5)
        radii = np.where(np.arange(10) % 2 == 0, r, r * inner)
        cv2.fillPoly(mask, [_polygon(centre, radii, angles, rotation)], 1)
    elif category == "ring":
        cv2.circle(mask, c, max(int(round(r)), 3), 1, -1)
        cv2.circle(mask, c, max(int(round(r * rng.uniform(0.45, 0.65))), 1), 0, -1)
    else:  # pragma: no cover - CATEGORY_NAMES is closed
        raise ValueError(category)
    return mask


def _place_shapes(rng: np.random.Generator, h: int, w: int, count: int) -> List[PlacedShape]:
    """Shapes back to front; a new one is moved while it would hide most of an earlier one."""
    shapes: List[PlacedShape] = []
    covered = np.zeros((h, w), np.uint8)  # union of the masks painted so far, to skip blank draws
    short_side = min(h, w)
    for _ in range(count):
        category_index = int(rng.integers(0, len(CATEGORY_NAMES)))
        size = short_side * float(np.exp(rng.uniform(np.log(0.12), np.log(0.45))))
        for _try in range(PLACEMENT_TRIES):
            mask = _shape_mask(rng, CATEGORY_NAMES[category_index], h, w, size)
            if mask.sum() < 4 * MIN_VISIBLE_PIXELS:
                continue  # mostly outside the image
            if not covered.any() or _keeps_earlier_visible(shapes, mask):
                shapes.append(PlacedShape(category_index + 1, mask))
                covered |= mask
                break
    return shapes


def _keeps_earlier_visible(shapes: Sequence[PlacedShape], new_mask: np.ndarray) -> bool:
    hidden_by_later = new_mask.astype(bool)
    for shape in reversed(shapes):
        full = shape.mask.astype(bool)
        visible = full & ~hidden_by_later
        if visible.sum() < MIN_VISIBLE_FRACTION * full.sum():
            return False
        hidden_by_later = hidden_by_later | full
    return True


def _render(rng: np.random.Generator, h: int, w: int, shapes: Sequence[PlacedShape]) -> np.ndarray:
    image = _background(rng, h, w)
    for shape in shapes:
        ys, xs = np.nonzero(shape.mask)
        y0, y1, x0, x1 = ys.min(), ys.max() + 1, xs.min(), xs.max() + 1
        region = image[y0:y1, x0:x1]
        avoid = region.reshape(-1, 3).mean(axis=0)
        fill = _texture(rng, y1 - y0, x1 - x0, _distinct_colour(rng, avoid))
        inside = shape.mask[y0:y1, x0:x1].astype(bool)
        region[inside] = np.clip(fill[inside], 0, 255).astype(np.uint8)
    noise = _gaussian(rng, image.shape, rng.uniform(0, 4))
    return np.clip(image.astype(np.float32) + noise, 0, 255).astype(np.uint8)


def visible_masks(shapes: Sequence[PlacedShape]) -> List[Tuple[int, np.ndarray]]:
    """(category_id, visible 0/1 mask) per shape, back to front, fully hidden shapes dropped."""
    out: List[Tuple[int, np.ndarray]] = []
    hidden = np.zeros_like(shapes[0].mask, dtype=bool) if shapes else None
    for shape in reversed(shapes):
        visible = shape.mask.astype(bool) & ~hidden
        hidden |= shape.mask.astype(bool)
        if visible.sum() >= MIN_VISIBLE_PIXELS:
            out.append((shape.category_id, visible.astype(np.uint8)))
    out.reverse()
    return out


def encode_mask(mask: np.ndarray) -> dict:
    """COCO compressed RLE of a 0/1 (h, w) mask, counts as str (JSON-ready)."""
    rle = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
    return {"size": [int(v) for v in rle["size"]], "counts": rle["counts"].decode("ascii")}


def _annotation(ann_id: int, image_id: int, category_id: int, mask: np.ndarray) -> dict:
    ys, xs = np.nonzero(mask)
    x0, y0 = int(xs.min()), int(ys.min())
    bbox = (x0, y0, int(xs.max()) + 1 - x0, int(ys.max()) + 1 - y0)  # what mask.toBbox gives
    return {
        "id": ann_id,
        "image_id": image_id,
        "category_id": category_id,
        "segmentation": encode_mask(mask),
        "area": int(mask.sum()),
        "bbox": [float(v) for v in bbox],
        "iscrowd": 0,
    }


def _check_args(n_images: int, image_size: Tuple[int, int], image_format: str,
                objects_per_image: Tuple[int, int]) -> None:
    if not isinstance(n_images, int) or n_images < 0:
        raise ConfigError(f"n_images must be a whole number >= 0, got {n_images!r}")
    if len(image_size) != 2 or min(image_size) < 32:
        raise ConfigError(f"image_size must be (height, width) with both >= 32 px, got {image_size!r}")
    if image_format not in IMAGE_FORMATS:
        raise ConfigError(f"image_format must be one of {IMAGE_FORMATS}, got {image_format!r}")
    lo, hi = objects_per_image
    if not 1 <= lo <= hi:
        raise ConfigError(f"objects_per_image must be (min, max) with 1 <= min <= max, got {objects_per_image!r}")


def generate(out_dir: "str | Path", n_images: int, *, seed: int, image_size: Tuple[int, int] = (320, 320),
             split_name: str = "train", image_format: str = "png",
             objects_per_image: Tuple[int, int] = (1, 6)) -> Path:
    """Write `n_images` images and their COCO annotations under `<out_dir>/<split_name>/`.

    Returns the path of `annotations.json`. Image and annotation ids start at 1.
    """
    _check_args(n_images, tuple(image_size), image_format, tuple(objects_per_image))
    h, w = int(image_size[0]), int(image_size[1])
    split_dir = Path(out_dir) / split_name
    images_dir = split_dir / IMAGES_DIRNAME
    images_dir.mkdir(parents=True, exist_ok=True)
    images, annotations = [], []
    for index in range(n_images):
        rng = _stream(seed, split_name, index)
        shapes = _place_shapes(rng, h, w, int(rng.integers(objects_per_image[0], objects_per_image[1] + 1)))
        image = _render(rng, h, w, shapes)
        image_id = index + 1
        file_name = f"{image_id:06d}.{image_format}"
        if not cv2.imwrite(str(images_dir / file_name), image):
            raise ConfigError(f"cannot write image {images_dir / file_name}: check the output folder")
        images.append({"id": image_id, "file_name": file_name, "height": h, "width": w})
        for category_id, mask in visible_masks(shapes):
            annotations.append(_annotation(len(annotations) + 1, image_id, category_id, mask))
    coco = {
        "info": {"description": "paddlex-edge-seg synthetic shapes", "version": GENERATOR_VERSION,
                 "seed": seed, "split": split_name},
        "images": images,
        "annotations": annotations,
        "categories": [{"id": i + 1, "name": name, "supercategory": "shape"}
                       for i, name in enumerate(CATEGORY_NAMES)],
    }
    ann_path = split_dir / ANNOTATIONS_FILENAME
    ann_path.write_text(json.dumps(coco, separators=(",", ":")), encoding="utf-8")
    logger.info("wrote %d images, %d instances to %s", n_images, len(annotations), split_dir)
    return ann_path


def generate_splits(out_dir: "str | Path", seed: int, n_train: int, n_val: int, n_calib: int, *,
                    image_size: Tuple[int, int] = (320, 320), image_format: str = "png") -> Dict[str, Path]:
    """The train / val / calib splits (disjoint random streams); returns split -> annotations.json."""
    counts = {"train": n_train, "val": n_val, "calib": n_calib}
    return {name: generate(out_dir, n, seed=seed, image_size=image_size, split_name=name,
                           image_format=image_format)
            for name, n in counts.items()}


def main(argv: "Sequence[str] | None" = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True, help="output folder; splits go to <out>/<split>/")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--train", type=int, default=2000)
    parser.add_argument("--val", type=int, default=200)
    parser.add_argument("--calib", type=int, default=64)
    parser.add_argument("--size", type=int, nargs=2, default=(320, 320), metavar=("H", "W"))
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    generate_splits(args.out, args.seed, args.train, args.val, args.calib, image_size=tuple(args.size))


if __name__ == "__main__":
    main()
