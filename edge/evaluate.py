"""COCO box AP and mask AP of instance-segmentation predictions (pycocotools COCOeval).

Predictions are what the runtime returns per image, PaddleX-style:
  boxes: [{"cls_id": int, "label": str, "score": float, "coordinate": [x1, y1, x2, y2]}, ...]
  masks: one 0/1 array per box, CROPPED to the box: full[round(y1):round(y2), round(x1):round(x2)]
Each mask is pasted back at (round(x1), round(y1)) on a full-size canvas before RLE encoding.
Classes are matched to the dataset's categories by NAME, so a model's label order need not be
the dataset's; a label the dataset does not know is an error, not a silent zero.

`evaluate` returns
  {"bbox": METRICS, "segm": METRICS, "num_images": int, "num_detections": int}
with METRICS = {"AP", "AP50", "AP75", "APs", "APm", "APl": float in [0, 1] (-1 where COCO has
nothing to measure, e.g. no small objects), "per_class": {name: AP or None if no ground truth}}.
"""
from __future__ import annotations

import contextlib
import copy
import io
import json
import logging
import math
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple, Union

import numpy as np
from pycocotools import mask as mask_utils
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from edge.errors import ConfigError, InputError

logger = logging.getLogger(__name__)

IOU_TYPES = ("bbox", "segm")
_STAT_NAMES = ("AP", "AP50", "AP75", "APs", "APm", "APl")
MAX_DETECTIONS = 100  # COCOeval scores the 100 best detections of an image; keeping more only costs memory


def load_ground_truth(coco_gt: Union[str, Path, COCO]) -> COCO:
    """A pycocotools COCO object from a path to a COCO json (or the object itself).

    The file is checked first (`check_coco`): pycocotools itself fails on a malformed file with
    a KeyError, a TypeError or a crash in its C code, far from the field that is wrong.
    """
    if isinstance(coco_gt, COCO):
        return coco_gt
    path = Path(coco_gt)
    if not path.is_file():
        raise InputError(str(path), "COCO annotation file not found; pass the path of an annotations json")
    try:
        dataset = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise InputError(str(path), f"not a COCO annotation file: not readable JSON ({exc})") from None
    problem = check_coco(dataset)
    if problem:
        raise InputError(str(path), f"not a COCO annotation file: {problem}")
    coco = COCO()
    coco.dataset = dataset
    with contextlib.redirect_stdout(io.StringIO()):  # pycocotools prints progress
        coco.createIndex()
    return coco


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _is_id(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _segmentation_problem(segmentation: Any) -> Optional[str]:
    if isinstance(segmentation, list):
        if not segmentation:
            return "an empty list; give polygons [[x1, y1, x2, y2, x3, y3, ...], ...] or an RLE"
        for polygon in segmentation:
            if not isinstance(polygon, list) or not all(_is_number(v) for v in polygon):
                return f"a polygon must be a list of numbers, got {str(polygon)[:60]}"
            if len(polygon) < 6 or len(polygon) % 2:
                return f"a polygon needs an even count of at least 6 numbers (3 points), got {len(polygon)}"
        return None
    if isinstance(segmentation, dict):
        size, counts = segmentation.get("size"), segmentation.get("counts")
        if not (isinstance(size, list) and len(size) == 2 and all(_is_id(v) and v >= 0 for v in size)):
            return "an RLE needs size [height, width]"
        if not (isinstance(counts, str) or (isinstance(counts, list) and all(_is_id(v) and v >= 0 for v in counts))):
            return "an RLE needs counts: a string or a list of run lengths"
        return None
    return f"must be a list of polygons or an RLE object, got {type(segmentation).__name__}"


def check_coco(dataset: Any) -> Optional[str]:
    """What is wrong with a COCO instance-segmentation dataset (the first thing found), or None."""
    if not isinstance(dataset, dict):
        return f"the top level must be an object with images, annotations and categories, got {type(dataset).__name__}"
    for key in ("images", "annotations", "categories"):
        if not isinstance(dataset.get(key), list):
            return f"{key!r} is missing or not a list"
    if not dataset["categories"]:
        return "'categories' is empty"
    categories = set()
    for i, cat in enumerate(dataset["categories"]):
        if not (isinstance(cat, dict) and _is_id(cat.get("id")) and isinstance(cat.get("name"), str)):
            return f"categories[{i}] needs an integer id and a name"
        categories.add(cat["id"])
    images: Dict[int, Tuple[int, int]] = {}
    for i, image in enumerate(dataset["images"]):
        if not (isinstance(image, dict) and _is_id(image.get("id"))):
            return f"images[{i}] needs an integer id"
        if not (isinstance(image.get("file_name"), str) and image["file_name"]):
            return f"images[{i}] (id {image['id']}) needs a file_name"
        if not all(_is_id(image.get(k)) and image[k] > 0 for k in ("width", "height")):
            return f"images[{i}] (id {image['id']}) needs a positive integer width and height"
        images[image["id"]] = (image["height"], image["width"])
    for i, ann in enumerate(dataset["annotations"]):
        where = f"annotations[{i}]"
        if not (isinstance(ann, dict) and _is_id(ann.get("id"))):
            return f"{where} must be an object with an integer id"
        if ann.get("image_id") not in images:
            return f"{where}.image_id {ann.get('image_id')!r} is not the id of an image"
        if ann.get("category_id") not in categories:
            return f"{where}.category_id {ann.get('category_id')!r} is not the id of a category"
        bbox = ann.get("bbox")
        if not (isinstance(bbox, list) and len(bbox) == 4 and all(_is_number(v) for v in bbox)) or bbox[2] < 0 or bbox[3] < 0:
            return f"{where}.bbox must be [x, y, width, height] (numbers, width and height >= 0), got {str(bbox)[:60]}"
        if "segmentation" not in ann:
            return f"{where} has no segmentation"
        problem = _segmentation_problem(ann["segmentation"])
        if problem:
            return f"{where}.segmentation: {problem}"
        if isinstance(ann["segmentation"], dict) and tuple(ann["segmentation"]["size"]) != images[ann["image_id"]]:
            return f"{where}.segmentation: the RLE size is not the image's [height, width]"
        if "area" in ann and not _is_number(ann["area"]):
            return f"{where}.area must be a number"
        if ann.get("iscrowd", 0) not in (0, 1):
            return f"{where}.iscrowd must be 0 or 1"
    return None


def category_ids_by_name(coco_gt: COCO) -> Dict[str, int]:
    return {cat["name"]: int(cat["id"]) for cat in coco_gt.loadCats(coco_gt.getCatIds())}


def _box_name(box: Mapping[str, Any], labels: Optional[Sequence[str]]) -> str:
    if labels is not None:
        cls_id = int(box["cls_id"])
        if not 0 <= cls_id < len(labels):
            raise ConfigError(f"cls_id {cls_id} is outside the model's label list of {len(labels)} names")
        return str(labels[cls_id])
    if "label" not in box:
        raise ConfigError(f"box {dict(box)!r} has no 'label'; pass the model's label list as `labels`")
    return str(box["label"])


def paste_mask(mask: np.ndarray, coordinate: Sequence[float], hw: Tuple[int, int]) -> np.ndarray:
    """Full-size uint8 0/1 canvas with a box-cropped mask put back at (round(x1), round(y1))."""
    h, w = int(hw[0]), int(hw[1])
    canvas = np.zeros((h, w), np.uint8)
    mask = np.asarray(mask)
    if mask.ndim != 2:
        raise ConfigError(f"a mask must be a 2-D array cropped to its box, got shape {mask.shape}")
    x0, y0 = int(round(float(coordinate[0]))), int(round(float(coordinate[1])))
    # Clip both sides: a mask may be a pixel off the image edge, or the box may start above/left of 0.
    cy0, cx0 = max(y0, 0), max(x0, 0)
    cy1, cx1 = min(y0 + mask.shape[0], h), min(x0 + mask.shape[1], w)
    if cy1 > cy0 and cx1 > cx0:
        canvas[cy0:cy1, cx0:cx1] = mask[cy0 - y0:cy1 - y0, cx0 - x0:cx1 - x0] >= 0.5  # 0/1, bool or probabilities
    return canvas


def results_to_coco(image_id: int, boxes: Sequence[Mapping[str, Any]], masks: Optional[Sequence[np.ndarray]],
                    hw: Tuple[int, int], cat_id_by_name: Mapping[str, int],
                    labels: Optional[Sequence[str]] = None) -> List[dict]:
    """COCO result dicts (bbox [x, y, w, h], score, and RLE `segmentation` if masks are given).

    The class name comes from `labels[cls_id]` when the model's label list is given, else from
    the box's own `label`; it must be a category name of the dataset.
    """
    if masks is not None and len(masks) != len(boxes):
        raise ConfigError(f"image {image_id}: {len(boxes)} boxes but {len(masks)} masks; they must pair up")
    results = []
    for index, box in enumerate(boxes):
        name = _box_name(box, labels)
        if name not in cat_id_by_name:
            raise ConfigError(f"image {image_id}: the model's label {name!r} is not a category of the dataset "
                              f"({sorted(cat_id_by_name)}); evaluate on data with the model's classes")
        x1, y1, x2, y2 = (float(v) for v in box["coordinate"])
        result = {"image_id": int(image_id), "category_id": cat_id_by_name[name],
                  "bbox": [x1, y1, x2 - x1, y2 - y1], "score": float(box["score"])}
        if masks is not None:
            rle = mask_utils.encode(np.asfortranarray(paste_mask(masks[index], (x1, y1), hw)))
            rle["counts"] = rle["counts"].decode("ascii")
            result["segmentation"] = rle
        results.append(result)
    return results


def _summary(coco_gt: COCO, results: List[dict], iou_type: str) -> Dict[str, Any]:
    names = {int(c["id"]): c["name"] for c in coco_gt.loadCats(coco_gt.getCatIds())}
    gt_count = {cid: len(coco_gt.getAnnIds(catIds=[cid], iscrowd=None)) for cid in names}
    if not results:  # COCO.loadRes cannot take an empty list; nothing found means AP 0
        has_gt = any(gt_count.values())
        stats = {key: (0.0 if has_gt else -1.0) for key in _STAT_NAMES}
        stats["per_class"] = {names[cid]: (0.0 if gt_count[cid] else None) for cid in names}
        return stats
    with contextlib.redirect_stdout(io.StringIO()) as log:
        coco_dt = coco_gt.loadRes(results)
        evaluator = COCOeval(coco_gt, coco_dt, iouType=iou_type)
        evaluator.evaluate()
        evaluator.accumulate()
        evaluator.summarize()
    logger.debug("COCOeval %s:\n%s", iou_type, log.getvalue())
    stats = {key: float(value) for key, value in zip(_STAT_NAMES, evaluator.stats[:6])}
    # precision: [iou thresholds, recall points, categories, area ranges, max dets]; area "all",
    # the largest maxDets, as COCO's own AP does.
    precision = evaluator.eval["precision"][:, :, :, 0, -1]
    per_class: Dict[str, Optional[float]] = {}
    for k, cid in enumerate(evaluator.params.catIds):
        values = precision[:, :, k]
        values = values[values > -1]
        per_class[names[cid]] = float(values.mean()) if values.size and gt_count[cid] else None
    stats["per_class"] = per_class
    return stats


def evaluate(predictions: Mapping[int, Mapping[str, Any]], coco_gt: Union[str, Path, COCO],
             labels: Optional[Sequence[str]] = None) -> Dict[str, Any]:
    """Box and mask AP of `predictions` = {image_id: {"boxes": [...], "masks": [...]}}.

    An image of the dataset without an entry counts as "nothing found" there. Give `labels`
    (the model's label list) to name classes by `cls_id`; otherwise each box's `label` is used.
    """
    gt = load_ground_truth(coco_gt)
    cat_id_by_name = category_ids_by_name(gt)
    box_results: List[dict] = []
    mask_results: List[dict] = []
    for image_id, prediction in predictions.items():
        if int(image_id) not in gt.imgs:
            raise ConfigError(f"prediction for image id {image_id}, which the annotation file does not have")
        info = gt.imgs[int(image_id)]
        masks = prediction.get("masks") if hasattr(prediction, "get") else prediction["masks"]
        rows = results_to_coco(int(image_id), prediction["boxes"], masks,
                               (info["height"], info["width"]), cat_id_by_name, labels)
        for row in rows:
            # loadRes replaces a result's bbox by its mask's box when a mask is present, so the
            # box metric gets its own results without masks.
            box_results.append({key: value for key, value in row.items() if key != "segmentation"})
            if "segmentation" in row:
                mask_results.append(row)
    report: Dict[str, Any] = {
        "bbox": _summary(gt, box_results, "bbox"),
        "segm": _summary(gt, copy.deepcopy(mask_results), "segm"),
        "num_images": len(gt.getImgIds()),
        "num_detections": len(box_results),
    }
    logger.info("box AP %.4f, mask AP %.4f over %d images", report["bbox"]["AP"], report["segm"]["AP"],
                report["num_images"])
    return report


def default_images_dir(annotations: Path) -> Path:
    """The `images/` folder beside an annotation file, or the file's own folder."""
    beside = annotations.parent
    return beside / "images" if (beside / "images").is_dir() else beside


def evaluate_predictor(predictor, coco_gt: Union[str, Path, COCO], images_dir: Optional[Path] = None,
                       threshold: float = 0.05) -> Dict[str, Any]:
    """Run a predictor (pipeline.LocalPredictor or RemotePredictor) over a COCO set and evaluate it.

    Images are read from `images_dir`, by default the `images/` folder beside the annotation file
    (the layout of export/dataset/synthetic.py), or the annotation file's own folder. Only the best MAX_DETECTIONS of an image are kept,
    as COCOeval scores no more. The report gets `latency_ms`: the median per image
    of the whole call and, for a LocalPredictor, of each stage (preprocess, model, postprocess).
    """
    import time

    import cv2

    gt = load_ground_truth(coco_gt)
    if images_dir is None:
        if isinstance(coco_gt, COCO):
            raise ConfigError("pass images_dir when the ground truth is a COCO object")
        images_dir = default_images_dir(Path(coco_gt))
    labels = getattr(getattr(predictor, "spec", None), "labels", None)
    stages: Dict[str, List[float]] = {}
    predictions: Dict[int, Dict[str, Any]] = {}
    from edge.progress import bar

    for image_id in bar(sorted(gt.getImgIds()), desc=f"eval ({getattr(predictor, 'name', 'model')})"):
        path = Path(images_dir) / gt.imgs[image_id]["file_name"]
        image = cv2.imread(str(path))
        if image is None:
            raise InputError(str(path), "cannot read this image of the evaluation set")
        started = time.perf_counter()
        detections = predictor(image, threshold)
        stages.setdefault("total", []).append(time.perf_counter() - started)
        for stage, seconds in getattr(predictor, "last_stage_seconds", {}).items():
            stages.setdefault(stage, []).append(seconds)
        top = sorted(range(len(detections.boxes)), key=lambda i: -detections.boxes[i]["score"])[:MAX_DETECTIONS]
        predictions[image_id] = {"boxes": [detections.boxes[i] for i in top], "masks": [detections.masks[i] for i in top]}
    report = evaluate(predictions, gt, labels)
    report["latency_ms"] = {k: round(float(np.median(v)) * 1e3, 3) for k, v in stages.items()}
    return report
