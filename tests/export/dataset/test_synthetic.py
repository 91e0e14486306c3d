"""The synthetic COCO generator: valid COCO, visible-part masks, deterministic, disjoint splits."""
import hashlib
import json
from pathlib import Path

import cv2
import numpy as np
import pytest
from pycocotools import mask as mask_utils
from pycocotools.coco import COCO

from edge.errors import ConfigError
from export.dataset import CATEGORY_NAMES, IMAGES_DIRNAME, generate, generate_splits
from export.dataset.synthetic import PlacedShape, visible_masks


def _decode(segmentation: dict) -> np.ndarray:
    return mask_utils.decode({"size": segmentation["size"], "counts": segmentation["counts"].encode("ascii")})


def _digest(folder: Path) -> dict:
    return {p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> Path:
    return generate(tmp_path_factory.mktemp("synth"), 40, seed=3, image_size=(96, 128), split_name="val")


def test_layout_and_coco_fields(dataset):
    assert dataset.name == "annotations.json" and dataset.parent.name == "val"
    data = json.loads(dataset.read_text())
    assert [c["id"] for c in data["categories"]] == list(range(1, len(CATEGORY_NAMES) + 1))
    assert [c["name"] for c in data["categories"]] == list(CATEGORY_NAMES)
    assert [im["id"] for im in data["images"]] == list(range(1, 41))
    for image in data["images"]:
        assert (image["height"], image["width"]) == (96, 128)
        pixels = cv2.imread(str(dataset.parent / IMAGES_DIRNAME / image["file_name"]))
        assert pixels.shape == (96, 128, 3)
    assert len({a["id"] for a in data["annotations"]}) == len(data["annotations"])
    assert min(a["id"] for a in data["annotations"]) == 1
    assert {a["category_id"] for a in data["annotations"]} == set(range(1, len(CATEGORY_NAMES) + 1))
    COCO(str(dataset))  # pycocotools accepts it


def test_rle_area_and_bbox_agree_with_the_mask(dataset):
    data = json.loads(dataset.read_text())
    for ann in data["annotations"]:
        assert ann["iscrowd"] == 0 and isinstance(ann["segmentation"]["counts"], str)
        mask = _decode(ann["segmentation"])
        assert mask.shape == (96, 128)
        assert ann["area"] == int(mask.sum()) > 0
        rle = mask_utils.encode(np.asfortranarray(mask))
        assert ann["bbox"] == [float(v) for v in mask_utils.toBbox(rle)]


def test_masks_of_one_image_are_disjoint_visible_parts(dataset):
    data = json.loads(dataset.read_text())
    by_image = {}
    for ann in data["annotations"]:
        by_image.setdefault(ann["image_id"], []).append(_decode(ann["segmentation"]).astype(np.int32))
    stacked_images = 0
    for masks in by_image.values():
        assert np.stack(masks).sum(axis=0).max() <= 1  # each pixel belongs to at most one instance
        stacked_images += len(masks) > 1
    assert stacked_images >= 10  # the set really has several instances per image


def test_visible_masks_cut_occluded_parts_and_drop_hidden_shapes():
    def square(y0, x0, size):
        mask = np.zeros((40, 40), np.uint8)
        mask[y0:y0 + size, x0:x0 + size] = 1
        return mask

    back, front = square(0, 0, 20), square(10, 10, 20)
    hidden = square(22, 22, 5)  # painted before `front`, entirely under it
    result = visible_masks([PlacedShape(1, back), PlacedShape(3, hidden), PlacedShape(2, front)])
    assert [cid for cid, _ in result] == [1, 2]
    back_visible, front_visible = result[0][1], result[1][1]
    assert back_visible.sum() == 400 - 100 and back_visible[15, 15] == 0 and back_visible[5, 5] == 1
    assert np.array_equal(front_visible, front)


def test_same_seed_is_byte_identical_and_other_seeds_differ(tmp_path):
    first = generate(tmp_path / "a", 6, seed=11, image_size=(64, 64))
    second = generate(tmp_path / "b", 6, seed=11, image_size=(64, 64))
    other = generate(tmp_path / "c", 6, seed=12, image_size=(64, 64))
    assert first.read_bytes() == second.read_bytes()
    assert _digest(first.parent) == _digest(second.parent)
    assert _digest(first.parent) != _digest(other.parent)


def test_splits_are_disjoint_and_sized(tmp_path):
    paths = generate_splits(tmp_path, 5, n_train=8, n_val=4, n_calib=3, image_size=(64, 64), image_format="jpg")
    assert set(paths) == {"train", "val", "calib"}
    sizes = {name: len(json.loads(p.read_text())["images"]) for name, p in paths.items()}
    assert sizes == {"train": 8, "val": 4, "calib": 3}
    hashes = [set(_digest(p.parent / IMAGES_DIRNAME).values()) for p in paths.values()]
    assert not (hashes[0] & hashes[1]) and not (hashes[0] & hashes[2]) and not (hashes[1] & hashes[2])
    assert all(name.endswith(".jpg") for name in _digest(paths["val"].parent / IMAGES_DIRNAME))


def test_objects_differ_from_their_background(dataset):
    """A shape's pixels must stand out from the ring of background around it, or nothing can learn it."""
    data = json.loads(dataset.read_text())
    contrasts = []
    for ann in data["annotations"][:60]:
        image = cv2.imread(str(dataset.parent / IMAGES_DIRNAME / f"{ann['image_id']:06d}.png")).astype(np.float32)
        mask = _decode(ann["segmentation"])
        around = cv2.dilate(mask, np.ones((5, 5), np.uint8)) - mask
        if mask.sum() < 30 or around.sum() < 30:
            continue
        contrasts.append(np.abs(image[mask > 0].mean(0) - image[around > 0].mean(0)).sum())
    assert np.median(contrasts) > 40


@pytest.mark.parametrize("kwargs", [
    {"n_images": -1}, {"image_size": (16, 64)}, {"image_format": "bmp"}, {"objects_per_image": (3, 2)},
])
def test_bad_arguments_raise_config_error(tmp_path, kwargs):
    args = {"n_images": 1, "seed": 0, **kwargs}
    with pytest.raises(ConfigError):
        generate(tmp_path, **args)
