"""Box and mask AP with real pycocotools on ground truth from the synthetic generator."""
import json
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
from pycocotools import mask as mask_utils

from edge.errors import ConfigError, InputError
from edge.evaluate import evaluate, load_ground_truth, paste_mask, results_to_coco
from export.dataset import CATEGORY_NAMES, generate


@pytest.fixture(scope="module")
def gt_path(tmp_path_factory):
    return generate(tmp_path_factory.mktemp("gt"), 16, seed=7, image_size=(96, 112), split_name="val")


def _predictions_from_ground_truth(gt_path, labels=CATEGORY_NAMES, erode=0, shift=0.0, skip_class=None):
    """Runtime-style results made from the ground truth: boxes in x1y1x2y2, masks cropped to the box."""
    data = json.loads(gt_path.read_text())
    names = {c["id"]: c["name"] for c in data["categories"]}
    predictions = {im["id"]: {"boxes": [], "masks": []} for im in data["images"]}
    for ann in data["annotations"]:
        name = names[ann["category_id"]]
        if name == skip_class:
            continue
        full = mask_utils.decode({"size": ann["segmentation"]["size"],
                                  "counts": ann["segmentation"]["counts"].encode("ascii")})
        if erode:
            full = cv2.erode(full, np.ones((2 * erode + 1, 2 * erode + 1), np.uint8))
        x, y, w, h = ann["bbox"]
        x1, y1, x2, y2 = x + shift, y + shift, x + w + shift, y + h + shift
        crop = full[int(round(y1)):int(round(y2)), int(round(x1)):int(round(x2))]
        box = {"cls_id": labels.index(name), "label": name, "score": 0.5 + 0.4 * (ann["id"] % 5) / 5,
               "coordinate": [x1, y1, x2, y2]}
        predictions[ann["image_id"]]["boxes"].append(box)
        predictions[ann["image_id"]]["masks"].append(crop)
    return predictions


def test_perfect_predictions_score_one(gt_path):
    report = evaluate(_predictions_from_ground_truth(gt_path), gt_path)
    assert report["bbox"]["AP"] == pytest.approx(1.0)
    assert report["segm"]["AP"] == pytest.approx(1.0)
    assert report["segm"]["AP50"] == pytest.approx(1.0) and report["segm"]["AP75"] == pytest.approx(1.0)
    assert report["segm"]["per_class"] == pytest.approx({name: 1.0 for name in CATEGORY_NAMES})
    assert report["num_images"] == 16 and report["num_detections"] == len(json.loads(gt_path.read_text())["annotations"])


def test_eroded_masks_lower_mask_ap_monotonically_but_not_box_ap(gt_path):
    mask_aps = []
    for erode in (0, 1, 2, 3):
        report = evaluate(_predictions_from_ground_truth(gt_path, erode=erode), gt_path)
        assert report["bbox"]["AP"] == pytest.approx(1.0)
        mask_aps.append(report["segm"]["AP"])
    assert all(a > b for a, b in zip(mask_aps, mask_aps[1:])), mask_aps
    assert mask_aps[-1] < 0.6


def test_shifted_boxes_lower_box_ap_monotonically(gt_path):
    box_aps = [evaluate(_predictions_from_ground_truth(gt_path, shift=s), gt_path)["bbox"]["AP"]
               for s in (0.0, 1.0, 2.5, 5.0)]
    assert all(a > b for a, b in zip(box_aps, box_aps[1:])), box_aps


def test_missing_class_gets_zero_ap_for_that_class_only(gt_path):
    report = evaluate(_predictions_from_ground_truth(gt_path, skip_class="star"), gt_path)
    for metric in ("bbox", "segm"):
        per_class = report[metric]["per_class"]
        assert per_class["star"] == 0.0
        assert all(per_class[name] == pytest.approx(1.0) for name in CATEGORY_NAMES if name != "star")
        assert report[metric]["AP"] == pytest.approx(1 - 1 / len(CATEGORY_NAMES))


def test_label_order_of_the_model_does_not_matter(gt_path):
    model_labels = list(reversed(CATEGORY_NAMES))
    predictions = _predictions_from_ground_truth(gt_path, labels=model_labels)
    for prediction in predictions.values():
        for box in prediction["boxes"]:
            del box["label"]  # names come from the model's label list through cls_id only
    report = evaluate(predictions, gt_path, labels=model_labels)
    assert report["segm"]["AP"] == pytest.approx(1.0) and report["bbox"]["AP"] == pytest.approx(1.0)


def test_empty_predictions_score_zero_without_crashing(gt_path):
    for predictions in ({}, {1: {"boxes": [], "masks": []}}):
        report = evaluate(predictions, gt_path)
        assert report["bbox"]["AP"] == 0.0 and report["segm"]["AP"] == 0.0
        assert set(report["segm"]["per_class"].values()) == {0.0}
        assert report["num_detections"] == 0


def test_boxes_without_masks_score_boxes_only(gt_path):
    predictions = _predictions_from_ground_truth(gt_path)
    for prediction in predictions.values():
        prediction["masks"] = None
    report = evaluate(predictions, gt_path)
    assert report["bbox"]["AP"] == pytest.approx(1.0) and report["segm"]["AP"] == 0.0


def test_paste_mask_puts_the_crop_back_and_clips_at_the_border():
    crop = np.ones((4, 6), np.uint8)
    canvas = paste_mask(crop, (1.4, 2.6, 7.4, 6.6), (8, 5))
    assert canvas.shape == (8, 5) and canvas.sum() == 4 * 4
    assert canvas[3:7, 1:5].all() and not canvas[:3].any()
    assert paste_mask(crop, (-3, -2, 3, 2), (8, 8)).sum() == 2 * 3
    probabilities = np.array([[0.2, 0.7], [0.5, 0.49]], np.float32)
    np.testing.assert_array_equal(paste_mask(probabilities, (0, 0, 2, 2), (2, 2)), [[0, 1], [1, 0]])


def test_results_to_coco_rows(gt_path):
    boxes = [{"cls_id": 0, "label": "ring", "score": 0.9, "coordinate": [10.0, 20.0, 30.0, 50.0]}]
    rows = results_to_coco(3, boxes, [np.ones((30, 20), np.uint8)], (96, 112), {"ring": 5})
    assert rows[0]["bbox"] == [10.0, 20.0, 20.0, 30.0] and rows[0]["category_id"] == 5
    assert rows[0]["image_id"] == 3 and isinstance(rows[0]["segmentation"]["counts"], str)
    assert mask_utils.area(dict(rows[0]["segmentation"], counts=rows[0]["segmentation"]["counts"].encode())) == 600


def test_bad_inputs_raise_typed_errors(gt_path, tmp_path):
    unknown = {1: {"boxes": [{"cls_id": 0, "label": "person", "score": 0.9, "coordinate": [0, 0, 5, 5]}],
                   "masks": [np.ones((5, 5), np.uint8)]}}
    with pytest.raises(ConfigError, match="person"):
        evaluate(unknown, gt_path)
    with pytest.raises(ConfigError, match="masks"):
        evaluate({1: {"boxes": unknown[1]["boxes"], "masks": []}}, gt_path)
    with pytest.raises(ConfigError, match="image id 999"):
        evaluate({999: {"boxes": [], "masks": []}}, gt_path)
    with pytest.raises(ConfigError, match="label list"):
        evaluate(unknown, gt_path, labels=[])
    with pytest.raises(InputError, match="not found"):
        load_ground_truth(tmp_path / "missing.json")
    (tmp_path / "bad.json").write_text("[1, 2]")
    with pytest.raises(InputError, match="not a COCO"):
        load_ground_truth(tmp_path / "bad.json")


def _broken(gt_path, change):
    dataset = json.loads(gt_path.read_text())
    change(dataset)
    return dataset


BROKEN_COCO = [
    ("empty object", lambda d: d.clear(), "'images' is missing"),
    ("no file_name", lambda d: d["images"][0].pop("file_name"), "images[0] (id 1) needs a file_name"),
    ("no categories", lambda d: d.pop("categories"), "'categories' is missing"),
    ("polygon of one point", lambda d: d["annotations"][0].update(segmentation=[[1, 2]]),
     "annotations[0].segmentation: a polygon needs an even count of at least 6 numbers"),
    ("string segmentation", lambda d: d["annotations"][0].update(segmentation="abc"),
     "annotations[0].segmentation: must be a list of polygons or an RLE object, got str"),
    ("string bbox", lambda d: d["annotations"][0].update(bbox="1,2,3,4"), "annotations[0].bbox must be"),
    ("unknown category", lambda d: d["annotations"][0].update(category_id=99), "annotations[0].category_id 99"),
]


@pytest.mark.parametrize("change,words", [c[1:] for c in BROKEN_COCO], ids=[c[0] for c in BROKEN_COCO])
def test_broken_coco_file_is_an_input_error_naming_the_field(gt_path, tmp_path, change, words):
    path = tmp_path / "broken.json"
    path.write_text(json.dumps(_broken(gt_path, change)))
    with pytest.raises(InputError, match="not a COCO annotation file") as error:
        load_ground_truth(path)
    assert words in str(error.value)


@pytest.mark.parametrize("change,words", [c[1:] for c in BROKEN_COCO], ids=[c[0] for c in BROKEN_COCO])
def test_edge_eval_on_a_broken_coco_file_exits_2_with_one_line(gt_path, tmp_path, standin_edge, change, words):
    path = tmp_path / "broken.json"
    path.write_text(json.dumps(_broken(gt_path, change)))
    done = subprocess.run([sys.executable, "-m", "edge.cli", "eval", "--model", str(standin_edge.inference_dir),
                           "--data", str(path)], capture_output=True, text=True, timeout=300,
                          cwd=Path(__file__).resolve().parents[2])
    assert done.returncode == 2, done.stderr
    assert done.stderr.strip().count("\n") == 0 and words in done.stderr and "Traceback" not in done.stderr, done.stderr
