"""PP-YOLOE_seg training losses: closed-form checks and a descent check on free tensors."""
import numpy as np
import pytest

import export  # noqa: F401  (PIR flag before paddle)
import paddle

from export.train.assigner import assign
from export.networks.ppyoloe_seg_demo import anchor_points
from export.train.losses import (RawHeadOutputs, compute_losses, decode_distances, dfl_targets, giou_loss,
                                 mask_targets_in_boxes, varifocal_loss)


def test_giou_loss_is_zero_for_equal_boxes_and_above_one_for_far_ones():
    pred = paddle.to_tensor([[0.0, 0.0, 2.0, 2.0], [0.0, 0.0, 1.0, 1.0]])
    target = paddle.to_tensor([[0.0, 0.0, 2.0, 2.0], [3.0, 3.0, 4.0, 4.0]])
    loss = giou_loss(pred, target).numpy()
    assert loss[0] == pytest.approx(0.0, abs=1e-6)
    assert loss[1] == pytest.approx(1 + (16 - 2) / 16, rel=1e-5)  # IoU 0, hull 16, union 2


def test_dfl_targets_split_a_distance_between_two_bins():
    targets = dfl_targets(np.array([[3.25, 0.0, 15.999, 20.0]], np.float32), reg_max=16)
    assert targets.shape == (1, 4, 17)
    np.testing.assert_allclose(targets.sum(-1), 1.0, rtol=1e-6)
    np.testing.assert_allclose(targets[0, 0, 3:5], [0.75, 0.25], rtol=1e-6)
    expectation = (targets * np.arange(17)).sum(-1)
    np.testing.assert_allclose(expectation[0], [3.25, 0.0, 15.99, 15.99], rtol=1e-5)


def test_decode_distances_is_the_expected_bin():
    logits = np.full((1, 4, 17), -50.0, np.float32)
    logits[0, np.arange(4), [0, 5, 16, 7]] = 50.0
    np.testing.assert_allclose(decode_distances(paddle.to_tensor(logits)).numpy(), [[0, 5, 16, 7]], atol=1e-4)


def test_varifocal_loss_weights_positives_by_their_target():
    logits = paddle.to_tensor([[0.0, 0.0]])
    one_hot = paddle.to_tensor([[1.0, 0.0]])
    low = varifocal_loss(logits, paddle.to_tensor([[0.2, 0.0]]), one_hot).numpy()
    high = varifocal_loss(logits, paddle.to_tensor([[0.9, 0.0]]), one_hot).numpy()
    negative_only = 0.75 * 0.25 * np.log(2)  # alpha * p**2 * BCE(0.5, 0) for the negative class
    assert float(low) == pytest.approx(0.2 * np.log(2) + negative_only, rel=1e-5)
    assert float(high) == pytest.approx(0.9 * np.log(2) + negative_only, rel=1e-5)


def test_mask_window_covers_the_box_pixels():
    window = mask_targets_in_boxes(np.array([[1.0, 2.0, 3.0, 4.0]], np.float32), 5, 6).reshape(5, 6)
    expected = np.zeros((5, 6), np.float32)
    expected[2:4, 1:3] = 1
    np.testing.assert_array_equal(window, expected)


def test_losses_fall_when_the_raw_outputs_are_optimised():
    """All four terms wired to the right anchors, boxes and masks: gradient descent on the raw
    outputs themselves must drive every term down."""
    paddle.seed(0)
    size, num_classes, protos_n = (64, 64), 2, 4
    anchors, strides = anchor_points(size, strides=(16, 8))
    num_anchors = len(anchors)
    gt_boxes = np.array([[[4, 4, 36, 28], [30, 34, 60, 62]]], np.float32)
    gt_labels = np.array([[0, 1]])
    gt_masks = np.zeros((1, 2, 16, 16), np.float32)
    gt_masks[0, 0, 1:7, 1:9] = 1
    gt_masks[0, 1, 9:15, 8:15] = 1
    params = [paddle.create_parameter(shape, "float32", default_initializer=paddle.nn.initializer.Normal(0, 0.1))
              for shape in ([1, num_anchors, num_classes], [1, num_anchors, 4, 17], [1, num_anchors, protos_n],
                            [1, protos_n, 16, 16])]
    optimizer = paddle.optimizer.Adam(0.05, parameters=params)
    history = []
    for _ in range(60):
        outputs = RawHeadOutputs(*params)
        scores = paddle.nn.functional.sigmoid(outputs.cls_logits).numpy()
        dist = decode_distances(outputs.reg_logits).numpy() * strides[None, :, None]
        boxes = np.concatenate([anchors[None] - dist[..., :2], anchors[None] + dist[..., 2:]], axis=-1)
        assignment = assign(scores, boxes, anchors, gt_labels, gt_boxes, np.ones((1, 2), bool), num_classes)
        losses = compute_losses(outputs, assignment, anchors, strides, gt_masks, size)
        history.append({k: float(v) for k, v in losses.items()})
        losses["total"].backward()
        optimizer.step()
        optimizer.clear_grad()
    first, last = history[0], history[-1]
    assert all(np.isfinite(v) for h in history for v in h.values())
    for term in ("iou", "dfl", "mask", "total"):
        assert last[term] < 0.5 * first[term], (term, first[term], last[term])
