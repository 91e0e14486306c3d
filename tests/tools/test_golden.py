"""The golden vectors (tests/golden, written by `python -m tools.golden`) against the Python runtime.

The Android Java core's JUnit tests read the same files (tests/android runs them): a change on
either side that breaks parity fails one of the two suites.
"""
import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from edge.bundle import load_manifest, spec_from_manifest
from edge.postprocess import crop_region, postprocess
from edge.preprocess import INTERP_CODES, Preprocessor, resize_image
from edge.serve.codec import decode_mask
from edge.spec import ModelSpec
from tools.golden import GOLDEN_DIR, INDEX_FILE, SAMPLES, case_arrays, export_bundles

INDEX = json.loads((GOLDEN_DIR / INDEX_FILE).read_text(encoding="utf-8"))
CASES = INDEX["cases"]
IDS = [c["name"] for c in CASES]


def spec_of(case) -> ModelSpec:
    return spec_from_manifest(load_manifest(GOLDEN_DIR / case["manifest"]), case["manifest"])


def arrays_of(case):
    with np.load(GOLDEN_DIR / case["arrays"]) as data:
        return {k: data[k] for k in data.files}


def full_mask_output(case, arrays) -> np.ndarray:
    """The model's mask output with the rows the vectors leave out set to NaN: reading one shows."""
    mask = np.full(case["mask_shape"], np.nan, dtype=case["mask_dtype"])
    mask[arrays["mask_rows"]] = arrays["mask"]
    return mask


def test_both_layouts_and_several_detections_are_covered():
    assert {c["layout"] for c in CASES} == {"lowres", "full"}
    assert all(len(c["results"]) >= 2 for c in CASES)
    assert sum(f.stat().st_size for f in GOLDEN_DIR.rglob("*") if f.is_file()) < 4e6  # small enough to commit


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_the_stored_image_is_the_sample_file(case):
    np.testing.assert_array_equal(arrays_of(case)["image_bgr"], cv2.imread(str(SAMPLES.parent / case["source_image"])))


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_runtime_reproduces_the_feeds(case):
    spec, arrays = spec_of(case), arrays_of(case)
    feeds = Preprocessor(spec)(arrays["image_bgr"])
    for key, name in zip(("im_shape", "image", "scale_factor"), spec.input_names):
        np.testing.assert_array_equal(feeds[name], arrays[key], err_msg=key)


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_runtime_reproduces_the_results_from_the_raw_outputs(case):
    spec, arrays = spec_of(case), arrays_of(case)
    detections = postprocess(arrays["bbox"], arrays["bbox_num"], full_mask_output(case, arrays),
                             arrays["image_bgr"].shape[:2], arrays["scale_factor"][0], spec, case["threshold"])
    expected = case["results"]
    assert len(detections.boxes) == len(expected)
    for box, mask, want in zip(detections.boxes, detections.masks, expected):
        assert (box["cls_id"], box["label"]) == (want["cls_id"], want["label"])
        assert box["score"] == want["score"]
        np.testing.assert_array_equal(box["coordinate"], want["coordinate"])
        assert list(crop_region(box["coordinate"])) == want["region"]
        np.testing.assert_array_equal(mask, decode_mask(want["mask"]["rleResult"], want["mask"]["size"]))


def test_runtime_reproduces_the_resizes():
    with np.load(GOLDEN_DIR / INDEX["resize"]["arrays"]) as data:
        for entry in INDEX["resize"]["cases"]:
            h, w = entry["size"]
            got = resize_image(data[entry["src"]], w, h, INTERP_CODES[entry["interp"]])
            np.testing.assert_array_equal(got, data[entry["dst"]], err_msg=str(entry))


@pytest.fixture(scope="module")
def bundles(tmp_path_factory):
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("EDGE_CACHE", str(tmp_path_factory.mktemp("edge_cache")))  # the demo's calibration images go there
        yield export_bundles(tmp_path_factory.mktemp("golden_bundles"))


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_raw_outputs_are_what_todays_bundles_compute(case, bundles):
    """Re-export the demo model and run Paddle Lite on the stored feeds: the vectors are current."""
    from tools.golden import Case

    stored = arrays_of(case)
    source = Case(case["name"], case["layout"], str(Path(case["source_image"]).relative_to("samples")), case["threshold"])
    fresh, info = case_arrays(source, bundles[case["layout"]])
    assert info["lite_inputs"] == case["lite_inputs"] and info["lite_outputs"] == case["lite_outputs"]
    np.testing.assert_array_equal(fresh["bbox_num"], stored["bbox_num"])
    np.testing.assert_allclose(fresh["bbox"], stored["bbox"], rtol=1e-5, atol=1e-4)
    np.testing.assert_array_equal(fresh["mask_rows"], stored["mask_rows"])
    np.testing.assert_allclose(fresh["mask"], stored["mask"], rtol=1e-5, atol=1e-4)
