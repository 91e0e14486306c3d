"""Task-aligned assignment on hand-made boxes."""
import numpy as np

from export.train.assigner import assign, box_iou
from export.networks.ppyoloe_seg_demo import anchor_points


def _setup(gt_boxes, gt_labels, valid=None, num_classes=3, jitter=2.0):
    anchors, strides = anchor_points((64, 64), strides=(16, 8))
    # every anchor predicts a 24-px box around itself, class scores uniform 0.5
    pred_boxes = np.concatenate([anchors - 12 + jitter, anchors + 12 + jitter], axis=1)[None]
    scores = np.full((1, len(anchors), num_classes), 0.5, np.float32)
    gt_boxes = np.asarray(gt_boxes, np.float32)[None]
    gt_labels = np.asarray(gt_labels, np.int64)[None]
    valid = np.ones(gt_labels.shape, bool) if valid is None else np.asarray(valid)[None]
    return anchors, assign(scores, pred_boxes, anchors, gt_labels, gt_boxes, valid, num_classes, topk=5)


def test_box_iou():
    a = np.array([[0, 0, 10, 10]], np.float32)
    b = np.array([[0, 0, 10, 10], [5, 0, 15, 10], [20, 20, 30, 30]], np.float32)
    np.testing.assert_allclose(box_iou(a, b)[0], [1.0, 1 / 3, 0.0], atol=1e-6)


def test_positives_are_top_anchors_inside_the_box():
    anchors, result = _setup([[8, 8, 40, 40]], [2])
    positive = result.positive[0]
    assert 1 <= positive.sum() <= 5
    inside = (anchors[:, 0] > 8) & (anchors[:, 0] < 40) & (anchors[:, 1] > 8) & (anchors[:, 1] < 40)
    assert not (positive & ~inside).any()
    assert set(result.labels[0][positive]) == {2} and set(result.labels[0][~positive]) == {3}
    np.testing.assert_allclose(result.boxes[0][positive], np.tile([[8, 8, 40, 40]], (positive.sum(), 1)))
    scores = result.scores[0]
    assert (scores[~positive] == 0).all() and (scores[positive][:, :2] == 0).all()
    # the best anchor's target is its IoU with the ground truth
    pred = np.concatenate([anchors - 12 + 2, anchors + 12 + 2], axis=1)
    best_iou = box_iou(np.array([[8, 8, 40, 40]], np.float32), pred[positive])[0].max()
    np.testing.assert_allclose(scores[positive, 2].max(), best_iou, rtol=1e-5)


def test_anchor_claimed_twice_goes_to_the_box_it_overlaps_most():
    anchors = np.array([[10, 10], [20, 20], [30, 30]], np.float32)
    pred = np.array([[[0, 0, 20, 20], [16, 16, 24, 24], [20, 20, 40, 40]]], np.float32)
    gt = np.array([[[0, 0, 40, 40], [15, 15, 25, 25]]], np.float32)
    result = assign(np.full((1, 3, 2), 0.5, np.float32), pred, anchors, np.array([[0, 1]]), gt,
                    np.ones((1, 2), bool), num_classes=2, topk=3)
    assert result.positive[0].all()  # every anchor is inside the big box, the middle one in both
    assert list(result.gt_index[0]) == [0, 1, 0] and list(result.labels[0]) == [0, 1, 0]
    np.testing.assert_allclose(result.boxes[0, 1], [15, 15, 25, 25])


def test_padding_and_empty_ground_truth_give_background():
    _, padded = _setup([[8, 8, 40, 40]], [1], valid=[False])
    assert not padded.positive.any() and (padded.labels == 3).all() and padded.scores.sum() == 0
    anchors, _ = _setup([[8, 8, 40, 40]], [1])
    empty = assign(np.full((2, len(anchors), 3), 0.5, np.float32), np.zeros((2, len(anchors), 4), np.float32),
                   anchors, np.zeros((2, 0), np.int64), np.zeros((2, 0, 4), np.float32), np.zeros((2, 0), bool), 3)
    assert not empty.positive.any() and empty.labels.shape == (2, len(anchors))
