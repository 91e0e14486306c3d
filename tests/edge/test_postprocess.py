"""Post-processing against docs/REFERENCE.md: strict threshold, cls > -1, clipping, box crops, lowres masks."""
import numpy as np
import pytest

from edge.errors import BackendError
from edge.postprocess import crop_region, lowres_mask_in_box, postprocess, postprocess_outputs
from edge.spec import MaskLayout, ModelSpec

FULL = ModelSpec("m", "DETR", [], ["cat", "dog", "cow"])
LOWRES = ModelSpec("m", "PPYOLOE", [], ["cat", "dog", "cow"], mask_layout=MaskLayout("lowres", 4, 0.5))


def rows(*r):
    return np.asarray(r, dtype=np.float32).reshape(-1, 6)


def run(bbox, mask, hw=(40, 60), spec=FULL, threshold=0.5, scale=(1.0, 1.0)):
    return postprocess(bbox, np.asarray([len(bbox)], np.int32), mask, hw, scale, spec, threshold)


def test_threshold_is_strict_and_negative_classes_are_dropped():
    bbox = rows([0, 0.5, 1, 1, 10, 10], [1, 0.5001, 1, 1, 10, 10], [-1, 0.9, 1, 1, 10, 10], [2, 0.49, 1, 1, 10, 10])
    out = run(bbox, np.ones((4, 40, 60), np.int32))
    assert [(b["cls_id"], b["label"]) for b in out.boxes] == [(1, "dog")]
    assert out.boxes[0]["score"] == pytest.approx(0.5001)


def test_bbox_num_limits_the_rows_read():
    bbox = rows([0, 0.9, 1, 1, 10, 10], [1, 0.9, 1, 1, 10, 10])
    out = postprocess(bbox, np.asarray([1], np.int32), np.ones((2, 40, 60)), (40, 60), (1, 1), FULL, 0.5)
    assert len(out.boxes) == 1


def test_boxes_are_clipped_and_masks_cropped_to_the_rounded_box():
    mask = np.zeros((1, 40, 60), np.float32)
    mask[0, 5:20, 10:30] = 1
    out = run(rows([0, 0.9, -5.2, 4.6, 29.5, 100.0]), mask)
    assert out.boxes[0]["coordinate"] == [0.0, pytest.approx(4.6), 29.5, 40.0]
    x1, y1, x2, y2 = crop_region(out.boxes[0]["coordinate"])
    assert (x1, y1, x2, y2) == (0, 5, 30, 40)  # Python round: 4.6 -> 5, 29.5 -> 30 (banker's: 29.5 -> 30)
    np.testing.assert_array_equal(out.masks[0], mask[0, 5:40, 0:30].astype(np.uint8))
    assert out.masks[0].dtype == np.uint8


def test_degenerate_boxes_are_dropped_with_their_masks_keeping_alignment():
    # PaddleX drops the empty box after filtering the masks, so the next box would get its mask.
    mask = np.zeros((3, 40, 60), np.int32)
    mask[0, 0:10, 0:10] = 1
    mask[2, 20:30, 30:40] = 1
    bbox = rows([0, 0.9, 0, 0, 10, 10], [1, 0.9, 70, 5, 80, 9], [2, 0.9, 30, 20, 40, 30])  # row 1 is outside: no area
    out = run(bbox, mask)
    assert [b["cls_id"] for b in out.boxes] == [0, 2]
    assert len(out.masks) == 2
    assert out.masks[1].all() and out.masks[1].shape == (10, 10)


def test_a_box_under_one_pixel_is_kept_with_an_empty_mask_as_paddlex_does():
    # PaddleX drops a box only when its clipped float box has no area; a 0.2 px box rounds to an empty crop
    out = run(rows([0, 0.9, 10.2, 5, 10.4, 9], [1, 0.9, 20, 20, 30, 30]), np.ones((2, 40, 60), np.int32))
    assert [b["cls_id"] for b in out.boxes] == [0, 1]
    assert out.masks[0].shape == (4, 0) and out.masks[1].shape == (10, 10)


SOLO = ModelSpec("SOLOv2", "SOLOv2", [], ["cat", "dog", "cow"])


def test_solov2_rows_get_the_tight_box_of_their_mask():
    segm = np.zeros((3, 40, 60), np.uint8)
    segm[0, 5:9, 10:20] = 1
    segm[0, 30, 40] = 1  # the box spans every pixel of the mask
    segm[1, 1:3, 1:3] = 1
    labels, scores = np.asarray([2, 1, 0]), np.asarray([0.5, 0.49, 0.9], np.float32)  # row 2: empty mask
    out = postprocess_outputs([np.asarray(3), labels, scores, segm], (40, 60), (1, 1), SOLO, 0.5)
    assert [(b["cls_id"], b["label"]) for b in out.boxes] == [(2, "cow")]  # score >= threshold; empty mask dropped
    assert out.boxes[0]["coordinate"] == [10.0, 5.0, 41.0, 31.0]
    np.testing.assert_array_equal(out.masks[0], segm[0, 5:31, 10:41])


def test_solov2_with_other_outputs_is_a_backend_error():
    with pytest.raises(BackendError, match="4 outputs"):
        postprocess_outputs([np.zeros((1, 6)), np.asarray([1]), np.zeros((1, 4, 4))], (4, 4), (1, 1), SOLO, 0.5)


def test_mask_narrower_than_image_gives_a_full_size_crop():
    mask = np.ones((1, 40, 59), np.float32)  # PP-YOLOE_seg: 1 px narrower than the image
    out = run(rows([0, 0.9, 50, 0, 60, 10]), mask)
    assert out.masks[0].shape == (10, 10)
    assert out.masks[0][:, :9].all() and not out.masks[0][:, 9].any()


def brute_force_lowres(mask, region, scale, stride, threshold):
    """The lowres layout of edge/spec.py written out pixel by pixel."""
    x1, y1, x2, y2 = region
    hm, wm = mask.shape
    out = np.zeros((y2 - y1, x2 - x1), np.uint8)
    for yy in range(y1, y2):
        v = min(max((yy + 0.5) * scale[0] / stride - 0.5, 0), hm - 1)
        v0 = int(np.floor(v)); v1 = min(v0 + 1, hm - 1); fv = v - v0
        for xx in range(x1, x2):
            u = min(max((xx + 0.5) * scale[1] / stride - 0.5, 0), wm - 1)
            u0 = int(np.floor(u)); u1 = min(u0 + 1, wm - 1); fu = u - u0
            val = (mask[v0, u0] * (1 - fu) * (1 - fv) + mask[v0, u1] * fu * (1 - fv)
                   + mask[v1, u0] * (1 - fu) * fv + mask[v1, u1] * fu * fv)
            out[yy - y1, xx - x1] = val > threshold
    return out


def test_lowres_mask_resize_in_box_matches_the_layout_definition():
    rng = np.random.default_rng(1)
    lowres = rng.random((16, 16)).astype(np.float32)
    lowres = (lowres + np.roll(lowres, 1, 0) + np.roll(lowres, 1, 1)) / 3  # smoother, like real masks
    scale = (64 / 90, 64 / 120)  # a 90x120 image resized to 64x64, mask stride 4
    region = (7, 3, 115, 88)
    got = lowres_mask_in_box(lowres, region, scale, MaskLayout("lowres", 4, 0.5))
    want = brute_force_lowres(lowres, region, scale, 4, 0.5)
    assert got.shape == want.shape == (85, 108)
    assert (got == want).mean() >= 0.9999  # float rounding only


def test_lowres_logit_threshold():
    lowres = np.full((8, 8), -1.0, np.float32)
    lowres[:, 4:] = 2.0
    got = lowres_mask_in_box(lowres, (0, 0, 32, 32), (1.0, 1.0), MaskLayout("lowres", 4, 0.0))
    assert not got[:, :12].any() and got[:, 20:].all()


class CountingMasks:
    """An array wrapper that records which rows post-processing reads."""

    def __init__(self, array):
        self.array, self.read = array, []

    def __getitem__(self, index):
        self.read.append(index)
        return self.array[index]


def test_only_kept_instances_are_resized():
    scores = np.linspace(0.01, 0.99, 100)
    bbox = np.stack([np.zeros(100), scores, np.full(100, 2), np.full(100, 2), np.full(100, 30), np.full(100, 30)], 1)
    masks = CountingMasks(np.ones((100, 16, 16), np.float32))
    out = run(bbox.astype(np.float32), masks, hw=(40, 60), spec=LOWRES, threshold=0.8)
    kept = int((scores > 0.8).sum())
    assert len(out.boxes) == kept and sorted(masks.read) == list(np.flatnonzero(scores > 0.8))


def test_no_detection_gives_an_empty_result():
    out = run(rows([-1, 0.0, 0, 0, 0, 0]), np.zeros((1, 40, 59), np.float32))
    assert out.boxes == [] and out.masks == []
