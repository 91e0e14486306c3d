"""Training batches from a COCO instance-segmentation split (images + RLE masks).

Images go through the same pre-processing as the exported model's inference.yml: BGR -> RGB, resize
to the input size without keeping the ratio (cubic), x / 255, HWC -> CHW. Ground truth is scaled to
the input size; masks are area-averaged to prototype resolution (input / 4) as soft targets.
Augmentation: random horizontal and vertical flips.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Sequence, Tuple

import cv2
import numpy as np
from pycocotools import mask as mask_utils

from edge.errors import InputError

MASK_STRIDE = 4


@dataclass
class Batch:
    images: np.ndarray  # [B, 3, H, W] float32 in [0, 1], RGB
    gt_boxes: np.ndarray  # [B, n, 4] x1y1x2y2 in input pixels (padded)
    gt_labels: np.ndarray  # [B, n] 0-based class index (padded with 0)
    gt_valid: np.ndarray  # [B, n] bool
    gt_masks: np.ndarray  # [B, n, H/4, W/4] float32


class CocoSegmentation:
    """One split: `annotations.json` with images in `images/` beside it (see export.dataset)."""

    def __init__(self, annotations: "str | Path", input_size: Tuple[int, int], labels: Sequence[str]):
        self.path = Path(annotations)
        if not self.path.is_file():
            raise InputError(str(self.path), "annotation file not found; generate the data set first "
                                             "(python -m export.dataset --out <dir>)")
        coco = json.loads(self.path.read_text())
        self.input_size = (int(input_size[0]), int(input_size[1]))
        self.images: List[dict] = coco["images"]
        names = {c["id"]: c["name"] for c in coco["categories"]}
        missing = sorted(set(names.values()) - set(labels))
        if missing:
            raise InputError(str(self.path), f"categories {missing} are not in the model's labels {list(labels)}")
        self.class_of_category = {cid: list(labels).index(name) for cid, name in names.items()}
        self.annotations: Dict[int, List[dict]] = {im["id"]: [] for im in self.images}
        for ann in coco["annotations"]:
            if not ann.get("iscrowd", 0):
                self.annotations[ann["image_id"]].append(ann)
        self.image_dir = self.path.parent / "images"

    def __len__(self) -> int:
        return len(self.images)

    def read_image(self, index: int) -> np.ndarray:
        """The original BGR image, as the runtime would read it."""
        path = self.image_dir / self.images[index]["file_name"]
        image = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if image is None:
            raise InputError(str(path), "image missing or unreadable")
        return image

    def sample(self, index: int, rng: np.random.Generator, augment: bool) -> Tuple[np.ndarray, ...]:
        info = self.images[index]
        h, w = info["height"], info["width"]
        in_h, in_w = self.input_size
        image = cv2.cvtColor(self.read_image(index), cv2.COLOR_BGR2RGB)
        image = cv2.resize(image, (in_w, in_h), interpolation=cv2.INTER_CUBIC).astype(np.float32) / 255.0
        anns = self.annotations[info["id"]]
        sx, sy = in_w / w, in_h / h
        boxes = np.array([[a["bbox"][0] * sx, a["bbox"][1] * sy, (a["bbox"][0] + a["bbox"][2]) * sx,
                           (a["bbox"][1] + a["bbox"][3]) * sy] for a in anns], np.float32).reshape(-1, 4)
        labels = np.array([self.class_of_category[a["category_id"]] for a in anns], np.int64)
        mask_hw = (in_w // MASK_STRIDE, in_h // MASK_STRIDE)
        masks = np.stack([cv2.resize(mask_utils.decode({"size": a["segmentation"]["size"],
                                                        "counts": a["segmentation"]["counts"].encode("ascii")})
                                     .astype(np.float32), mask_hw, interpolation=cv2.INTER_AREA)
                          for a in anns]) if anns else np.zeros((0, mask_hw[1], mask_hw[0]), np.float32)
        if augment and rng.random() < 0.5:
            image, masks = image[:, ::-1], masks[:, :, ::-1]
            boxes[:, [0, 2]] = in_w - boxes[:, [2, 0]]
        if augment and rng.random() < 0.5:
            image, masks = image[::-1], masks[:, ::-1]
            boxes[:, [1, 3]] = in_h - boxes[:, [3, 1]]
        return np.ascontiguousarray(image.transpose(2, 0, 1)), boxes, labels, np.ascontiguousarray(masks)

    def batch(self, indices: Sequence[int], rng: np.random.Generator, augment: bool = True) -> Batch:
        samples = [self.sample(int(i), rng, augment) for i in indices]
        n = max(1, max(len(s[2]) for s in samples))
        mask_h, mask_w = self.input_size[0] // MASK_STRIDE, self.input_size[1] // MASK_STRIDE
        boxes = np.zeros((len(samples), n, 4), np.float32)
        labels = np.zeros((len(samples), n), np.int64)
        valid = np.zeros((len(samples), n), bool)
        masks = np.zeros((len(samples), n, mask_h, mask_w), np.float32)
        for b, (_, box, label, mask) in enumerate(samples):
            k = len(label)
            boxes[b, :k], labels[b, :k], valid[b, :k], masks[b, :k] = box, label, True, mask
        images = np.stack([s[0] for s in samples])
        return Batch(images, boxes, labels, valid, masks)
