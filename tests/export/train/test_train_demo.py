"""Demo network and training loop: raw head agrees with the network's own decode; a tiny run
trains, saves weights that load strictly into the same architecture, and evaluates."""
import json

import numpy as np
import pytest

import export  # noqa: F401  (PIR flag before paddle)
import paddle

from export.networks.weights import load_weights
from export.networks.ppyoloe_seg_demo import (DemoArch, anchor_points, build_demo_network, init_head_for_training,
                                       raw_head_outputs, save_demo_inference_dir)
from export.train.losses import decode_distances
from edge.errors import ModelError
from export.train.train_demo import TrainConfig, evaluate_saved, learning_rate, train

TINY = DemoArch(num_classes=3, input_size=(64, 96), width_mult=0.125, depth_mult=0.33, num_protos=8)


def test_raw_head_outputs_match_the_heads_own_decode():
    paddle.seed(1)
    net = build_demo_network(TINY)
    net.eval()
    image = paddle.rand([1, 3, 64, 96])
    raw = raw_head_outputs(net, image)
    decoded = net.yolo_head(net.neck(net.backbone(image)), TINY.input_size)
    anchors, strides = anchor_points(TINY.input_size)
    dist = decode_distances(raw.reg_logits).numpy()[0] * strides[:, None]
    boxes = np.concatenate([anchors - dist[:, :2], anchors + dist[:, 2:]], axis=1)
    np.testing.assert_allclose(boxes, decoded.boxes.numpy()[0], rtol=1e-4, atol=1e-3)
    np.testing.assert_allclose(paddle.nn.functional.sigmoid(raw.cls_logits).numpy()[0].T,
                               decoded.scores.numpy()[0], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(raw.mask_coeffs.numpy()[0].T, decoded.mask_coeffs.numpy()[0], rtol=1e-4, atol=1e-5)
    assert raw.protos.shape == [1, TINY.num_masks, 16, 24]  # stride 4


def test_head_init_starts_at_the_prior():
    net = build_demo_network(TINY)
    init_head_for_training(net.yolo_head)
    net.eval()
    raw = raw_head_outputs(net, paddle.rand([2, 3, 64, 96]))
    np.testing.assert_allclose(paddle.nn.functional.sigmoid(raw.cls_logits).numpy(), 0.01, rtol=1e-4)


def test_learning_rate_warms_up_then_decays():
    config = TrainConfig(lr=1.0, steps=100, warmup_steps=10)
    rates = [learning_rate(config, s) for s in range(100)]
    assert rates[0] == pytest.approx(0.1) and rates[9] == pytest.approx(1.0)
    assert all(a >= b for a, b in zip(rates[10:], rates[11:])) and rates[-1] < 0.1


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("tiny_run")
    config = TrainConfig(input_size=(64, 64), width_mult=0.125, num_protos=8, n_train=8, n_val=3, n_calib=1,
                         image_size=(64, 64), batch_size=4, steps=4, warmup_steps=2, log_every=2, eval_every=4,
                         eval_images=3)
    return root, train(config, root / "data", root / "out")


def test_tiny_training_run_saves_loadable_weights_and_a_log(tiny_run):
    root, summary = tiny_run
    assert (root / "data" / "calib" / "annotations.json").is_file()
    records = [json.loads(line) for line in (root / "out" / "log.jsonl").read_text().splitlines()]
    steps = [r for r in records if "total" in r]
    assert [r["step"] for r in steps] == [2, 4]
    assert all(np.isfinite(r[k]) for r in steps for k in ("cls", "iou", "dfl", "mask", "total"))
    assert "segm_AP" in records[-1]["eval"] and summary["val"] == records[-1]["eval"]
    saved = json.loads((root / "out" / "model.json").read_text())
    arch = DemoArch(**{**saved["arch"], "input_size": tuple(saved["arch"]["input_size"])})
    load_weights(build_demo_network(arch), str(root / "out" / "model.pdparams"))  # strict: every key, every shape
    report = evaluate_saved(root / "out", root / "data" / "val" / "annotations.json")
    assert report["segm"]["AP"] == pytest.approx(summary["val"]["segm_AP"], abs=1e-4)  # the EMA weights were saved
    with pytest.raises(ModelError, match="model.json"):
        evaluate_saved(root, root / "data" / "val" / "annotations.json")


def test_trained_model_exports_and_runs_in_the_runtime(tiny_run):
    """train -> edge-graph inference dir -> `paddle` backend + runtime post-processing -> COCO eval."""
    from edge.evaluate import evaluate_predictor
    from edge.models import open_model_dir
    from edge.predictor import LocalPredictor

    root, _ = tiny_run
    inference_dir = save_demo_inference_dir(root / "out", root / "inference")
    model = open_model_dir(inference_dir)
    assert model.spec.labels == ["circle", "rectangle", "triangle", "star", "ring"]
    assert model.spec.mask_layout.kind == "lowres"
    report = evaluate_predictor(LocalPredictor(model, backend="paddle"), root / "data" / "val" / "annotations.json")
    assert report["num_images"] == 3 and 0.0 <= report["segm"]["AP"] <= 1.0


def test_second_stage_starts_from_saved_weights(tiny_run):
    """`--init`: a second stage continues from the first stage's EMA weights instead of the prior."""
    root, _ = tiny_run
    config = TrainConfig(input_size=(64, 64), width_mult=0.125, num_protos=8, n_train=8, n_val=3, n_calib=1,
                         image_size=(64, 64), batch_size=4, steps=0, warmup_steps=2, log_every=2, eval_every=4,
                         eval_images=3)
    train(config, root / "data", root / "stage2", init=root / "out")
    first = paddle.load(str(root / "out" / "model.pdparams"))
    second = paddle.load(str(root / "stage2" / "model.pdparams"))
    assert all(np.array_equal(np.asarray(first[k]), np.asarray(second[k])) for k in first)  # 0 steps: unchanged
