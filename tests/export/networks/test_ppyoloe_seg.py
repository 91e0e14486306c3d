"""PP-YOLOE_seg-S: PaddleDetection's weight layout, reference vs edge graph, Paddle Inference vs Paddle Lite.

Fixed, seeded random weights (no pretrained weights are reachable here). They are shaped so that the
tests mean something: mask coefficients are centred on the prototypes so masks are neither all 0
nor all 1, and class scores are shifted so the detection count is what a test needs.
"""
from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Dict, List, Tuple

import export  # noqa: F401  (PIR off before paddle is imported)
import cv2
import numpy as np
import paddle
import pytest
from paddle.base.proto import framework_pb2

from edge.backends import create_backend
from edge.errors import ConfigError, ModelError
from edge.postprocess import crop_full_mask, crop_region, lowres_mask_in_box
from edge.preprocess import Preprocessor
from edge.spec import ModelSpec
from export.networks.ppyoloe_seg import PPYOLOESeg, export_ppyoloe_seg, ppyoloe_seg_spec
from export.networks.ppyoloe_seg_post import multiclass_nms3
from export.networks.weights import load_weights, read_layout_tsv, state_dict_layout
from export.optimize import optimize
from seeded_weights import seeded_state

DATA = Path(__file__).resolve().parents[2] / "data"
LAYOUT_TSV = DATA / "ppdet_params" / "PP-YOLOE_seg-S.tsv"
PHOTOS = Path(__file__).resolve().parents[3] / "samples" / "coco"
IMAGES = [PHOTOS / "000000014439.jpg", PHOTOS / "hrnet_demo.jpg"]
SMALL = (160, 160)
SMALL_CLASSES = 3
FEED_ORDER = ("im_shape", "image", "scale_factor")


# ----------------------------------------------------------------------------- weights and helpers
def feeds_for(image_path: Path, spec: ModelSpec) -> Dict[str, np.ndarray]:
    return Preprocessor(spec)(cv2.imread(str(image_path)))


def run_dygraph(net: PPYOLOESeg, feeds: Dict[str, np.ndarray]) -> List[np.ndarray]:
    with paddle.no_grad():
        return [t.numpy() for t in net(*[paddle.to_tensor(feeds[k]) for k in FEED_ORDER])]


def program_ops(model_dir: Path) -> Tuple[Counter, framework_pb2.ProgramDesc]:
    desc = framework_pb2.ProgramDesc()
    desc.ParseFromString((model_dir / "inference.pdmodel").read_bytes())
    return Counter(op.type for block in desc.blocks for op in block.ops), desc


def pair_tied_rows(ref_bbox: np.ndarray, edge_bbox: np.ndarray, score_tol: float = 1e-4) -> np.ndarray:
    """The edge row for each reference row: among the unused rows of the same class whose scores tie
    with it (within score_tol), the one with the nearest box. Rows with equal scores may come out of
    the two graphs' NMS in either order (seeded weights give exact ties)."""
    order = np.arange(len(ref_bbox))
    used = np.zeros(len(edge_bbox), dtype=bool)
    for i, row in enumerate(ref_bbox):
        tied = np.flatnonzero(~used & (edge_bbox[:, 0] == row[0]) & (np.abs(edge_bbox[:, 1] - row[1]) <= score_tol))
        if len(tied):
            order[i] = tied[np.argmin(np.abs(edge_bbox[tied, 2:] - row[2:]).max(axis=1))]
            used[order[i]] = True
    return order


def assert_same_detections(reference: List[np.ndarray], edge: List[np.ndarray], feeds: Dict[str, np.ndarray],
                           image_hw: Tuple[int, int], spec: ModelSpec, box_tol: float = 1e-3,
                           edge_band: float = 0.0) -> float:
    """Same rows (boxes <= box_tol px, scores <= 1e-4; tied rows in either order) and >= 99 % equal mask
    pixels inside each box.

    The reference crops its masks by the box at *model-input* pixel granularity before resizing them
    to the original size, which blurs a band of about 1.5 input pixels along the box edges; the
    lowres layout crops at original resolution. `edge_band` (in input pixels) leaves that band out
    of the comparison: it matters for small test inputs (an input pixel is 3-4 original pixels at
    160x160), not at 640x640. Returns the worst per-box mask agreement."""
    ref_bbox, ref_num, ref_mask = reference
    edge_bbox, edge_num, edge_mask = edge
    assert edge_num.dtype == np.int32 and ref_num.dtype == np.int32
    np.testing.assert_array_equal(edge_num, ref_num)
    assert edge_bbox.shape == ref_bbox.shape and edge_mask.shape[0] == ref_mask.shape[0] == ref_bbox.shape[0]
    order = pair_tied_rows(ref_bbox, edge_bbox)
    edge_bbox, edge_mask = edge_bbox[order], edge_mask[order]
    np.testing.assert_array_equal(edge_bbox[:, 0], ref_bbox[:, 0])
    np.testing.assert_allclose(edge_bbox[:, 1], ref_bbox[:, 1], atol=1e-4, rtol=0)
    np.testing.assert_allclose(edge_bbox[:, 2:], ref_bbox[:, 2:], atol=box_tol, rtol=0)
    h, w = image_hw
    worst = 1.0
    for i, row in enumerate(ref_bbox):
        coordinate = [max(0.0, row[2]), max(0.0, row[3]), min(float(w), row[4]), min(float(h), row[5])]
        region = crop_region(coordinate)
        if region[2] <= region[0] or region[3] <= region[1]:
            continue
        ours = lowres_mask_in_box(edge_mask[i], region, feeds["scale_factor"][0], spec.mask_layout)
        theirs = crop_full_mask(ref_mask[i], region)
        same = ours == theirs
        if edge_band:
            band_y, band_x = (int(np.ceil(edge_band / float(f))) for f in feeds["scale_factor"][0])
            inner = np.zeros_like(same)
            inner[band_y if row[3] > 0 else 0:same.shape[0] - (band_y if row[5] < h else 0),
                  band_x if row[2] > 0 else 0:same.shape[1] - (band_x if row[4] < w else 0)] = True
            same = same[inner]
        agreement = float(same.mean()) if same.size else 1.0
        worst = min(worst, agreement)
        assert agreement >= 0.99, f"detection {i}: only {agreement:.4f} of mask pixels agree in box {region}"
    return worst


# ----------------------------------------------------------------------------- state dict layout
def test_state_dict_is_paddledetection_layout_and_round_trips(tmp_path):
    net = PPYOLOESeg(num_classes=80, input_size=(640, 640))
    expected = dict(read_layout_tsv(LAYOUT_TSV))
    ours = dict(state_dict_layout(net))
    assert sorted(ours) == sorted(expected)
    assert {k: v for k, v in ours.items() if v != expected[k]} == {}

    state = seeded_state(net, seed=7)
    path = tmp_path / "model.pdparams"
    paddle.save(net.state_dict(), str(path))
    fresh = PPYOLOESeg(num_classes=80, input_size=(640, 640))
    load_weights(fresh, path)
    assert dict(state_dict_layout(fresh)) == expected
    for name, tensor in fresh.state_dict().items():
        np.testing.assert_array_equal(tensor.numpy(), state[name], err_msg=name)


def test_num_classes_changes_only_the_class_convs():
    ours = dict(state_dict_layout(PPYOLOESeg(num_classes=5, input_size=SMALL)))
    expected = dict(read_layout_tsv(LAYOUT_TSV))
    differing = sorted(k for k in expected if ours[k] != expected[k])
    assert differing == [f"yolo_head.pred_cls.{i}.{p}" for i in range(3) for p in ("bias", "weight")]
    assert ours["yolo_head.pred_cls.0.weight"] == (5, 384, 3, 3)


def test_weights_of_other_class_count_name_the_key_and_the_option(tmp_path):
    path = tmp_path / "coco.pdparams"
    paddle.save(PPYOLOESeg(num_classes=80, input_size=SMALL).state_dict(), str(path))
    with pytest.raises(ModelError) as info:
        load_weights(PPYOLOESeg(num_classes=SMALL_CLASSES, input_size=SMALL), path)
    message = str(info.value)
    assert "yolo_head.pred_cls.0.weight [80, 384, 3, 3]" in message and "--num-classes" in message
    assert str(path) in message


def test_missing_key_is_named():
    net = PPYOLOESeg(num_classes=SMALL_CLASSES, input_size=SMALL)
    state = {k: v.numpy() for k, v in net.state_dict().items()}
    del state["backbone.stages.1.blocks.0.conv2.alpha"]
    with pytest.raises(ModelError, match=r"missing .*backbone\.stages\.1\.blocks\.0\.conv2\.alpha"):
        load_weights(PPYOLOESeg(num_classes=SMALL_CLASSES, input_size=SMALL), state)


@pytest.mark.parametrize("bad", [(100, 100), (0, 640), ("a", 640), (640,)])
def test_bad_input_size_is_config_error(bad):
    with pytest.raises(ConfigError, match="input size"):
        PPYOLOESeg(num_classes=SMALL_CLASSES, input_size=bad)


def test_bad_graph_name_is_config_error():
    with pytest.raises(ConfigError, match="reference, edge"):
        PPYOLOESeg(num_classes=SMALL_CLASSES, input_size=SMALL, graph="lite")


# ----------------------------------------------------------------------------- exported small models
@pytest.fixture(scope="module")
def small_models(tmp_path_factory):
    """Reference and edge programs of one seeded 3-class 160x160 network, and the edge graph's x86 .nb."""
    root = tmp_path_factory.mktemp("ppyoloe_seg_small")
    net = PPYOLOESeg(num_classes=SMALL_CLASSES, input_size=SMALL)
    spec = ppyoloe_seg_spec("edge", ["a", "b", "c"], SMALL)
    state = seeded_state(net, seed=0, class_gain=100.0, class_shift=-6.0, sample=feeds_for(IMAGES[0], spec)["image"])
    dirs = {}
    for graph in ("reference", "edge"):
        dirs[graph] = export_ppyoloe_seg(root / graph, graph=graph, num_classes=SMALL_CLASSES, labels=["a", "b", "c"],
                                         input_size=SMALL, weights=state, model_name="PP-YOLOE_seg-S-test")
    nb = optimize(dirs["edge"], root / "edge_x86", target="x86")
    return {"dirs": dirs, "x86": nb, "state": state, "root": root}


def test_edge_program_has_none_of_the_patterns_lite_cannot_take(small_models):
    ops, desc = program_ops(small_models["dirs"]["edge"])
    assert len(desc.blocks) == 1
    forbidden = {"conditional_block", "select_input", "bmm", "swish", "assign_value", "set_value",
                 "strided_slice", "flatten_contiguous_range", "while"}
    assert forbidden.isdisjoint(ops), forbidden & set(ops)
    assert ops["multiclass_nms3"] == 1 and ops["matmul_v2"] == 1
    block = desc.blocks[0]
    bool_params = [v.name for v in block.vars if v.persistable and v.type.type == framework_pb2.VarType.DENSE_TENSOR
                   and v.type.dense_tensor.tensor.data_type == framework_pb2.VarType.BOOL]
    assert bool_params == []
    for op in block.ops:
        if op.type == "fill_constant":
            shape = [list(a.longs) for a in op.attrs if a.name == "shape"][0]
            assert len(shape) >= 1, "0-D fill_constant"
    # the reference program is PaddleDetection's: its `if` on the detection count is control flow
    ref_ops, _ = program_ops(small_models["dirs"]["reference"])
    assert ref_ops["conditional_block"] >= 1 and ref_ops["select_input"] >= 1


def test_inference_yml_describes_the_model(small_models):
    edge_spec = ModelSpec.from_inference_yml(small_models["dirs"]["edge"] / "inference.yml")
    assert edge_spec.arch == "PPYOLOE" and edge_spec.model_name == "PP-YOLOE_seg-S-test"
    assert edge_spec.labels == ["a", "b", "c"]
    assert (edge_spec.mask_layout.kind, edge_spec.mask_layout.stride, edge_spec.mask_layout.threshold) == ("lowres", 4, 0.5)
    assert edge_spec.preprocess == [
        {"type": "Resize", "target_size": [160, 160], "keep_ratio": False, "interp": 2},
        {"type": "NormalizeImage", "mean": [0.0, 0.0, 0.0], "std": [1.0, 1.0, 1.0], "norm_type": "none"},
        {"type": "Permute"},
    ]
    ref_spec = ModelSpec.from_inference_yml(small_models["dirs"]["reference"] / "inference.yml")
    assert ref_spec.mask_layout.kind == "full"


@pytest.mark.parametrize("image_path", IMAGES, ids=lambda p: p.stem)
def test_edge_graph_matches_reference_in_paddle_inference_and_lite(small_models, image_path):
    dirs = small_models["dirs"]
    spec = ModelSpec.from_inference_yml(dirs["edge"] / "inference.yml")
    image = cv2.imread(str(image_path))
    feeds = feeds_for(image_path, spec)
    reference = create_backend("paddle", dirs["reference"]).run(feeds)
    edge = create_backend("paddle", dirs["edge"]).run(feeds)
    lite = create_backend("lite", small_models["x86"]).run(feeds)

    assert reference[0].shape[0] > 5, "the seeded weights must give detections"
    assert reference[2].shape[1:] == (image.shape[0], image.shape[1]) or reference[2].shape[1] <= image.shape[0]
    assert edge[2].shape[1:] == (SMALL[0] // 4, SMALL[1] // 4)
    ref_mask_share = float(reference[2].mean())
    assert 0.05 < ref_mask_share < 0.95, f"masks should be mixed 0/1, got {ref_mask_share:.3f} ones"
    assert assert_same_detections(reference, edge, feeds, image.shape[:2], spec, edge_band=1.5) >= 0.99
    assert assert_same_detections(reference, lite, feeds, image.shape[:2], spec, edge_band=1.5) >= 0.99
    # the seeded coefficients are large (logits are sums of big, cancelling terms): compare loosely
    np.testing.assert_allclose(lite[2], edge[2], atol=2e-3)
    assert ((lite[2] > 0.5) == (edge[2] > 0.5)).mean() > 0.999


def test_no_detection_gives_one_zero_row_in_every_engine(small_models):
    root = small_models["root"]
    state = dict(small_models["state"])
    for i in range(3):  # every score far below the 0.01 threshold
        state[f"yolo_head.pred_cls.{i}.bias"] = np.full_like(state[f"yolo_head.pred_cls.{i}.bias"], -50.0)
    dirs = {graph: export_ppyoloe_seg(root / f"empty_{graph}", graph=graph, num_classes=SMALL_CLASSES,
                                      input_size=SMALL, weights=state) for graph in ("reference", "edge")}
    nb = optimize(dirs["edge"], root / "empty_x86", target="x86")
    spec = ModelSpec.from_inference_yml(dirs["edge"] / "inference.yml")
    image = cv2.imread(str(IMAGES[1]))
    feeds = feeds_for(IMAGES[1], spec)
    results = {
        "reference": create_backend("paddle", dirs["reference"]).run(feeds),
        "edge": create_backend("paddle", dirs["edge"]).run(feeds),
        "lite": create_backend("lite", nb).run(feeds),
    }
    for name, (bbox, bbox_num, mask) in results.items():
        assert bbox.shape == (1, 6) and not bbox.any(), name
        assert bbox_num.tolist() == [1], name
        assert mask.shape[0] == 1 and not mask.any(), name
    assert results["reference"][2].shape[1:] == (image.shape[0], image.shape[1])


def test_keep_top_k_boundary_is_the_same_in_both_graphs():
    """More than 300 detections survive NMS: both graphs keep the same 300 (the edge graph's dummy row
    must not push a real one out)."""
    net = PPYOLOESeg(num_classes=8, input_size=SMALL, graph="edge")
    spec = ppyoloe_seg_spec("edge", [str(i) for i in range(8)], SMALL)
    feeds = feeds_for(IMAGES[0], spec)
    seeded_state(net, seed=3, class_gain=100.0, sample=feeds["image"])
    with paddle.no_grad():
        outs = net.yolo_head(net.neck(net.backbone(paddle.to_tensor(feeds["image"]))), SMALL)
        all_kept = multiclass_nms3(outs.boxes, outs.scores, net.nms, keep_top_k=-1)[0]
    assert all_kept.shape[0] > 320, "the seeded weights must give more than keep_top_k detections"
    edge = run_dygraph(net, feeds)
    net.graph = "reference"
    reference = run_dygraph(net, feeds)
    assert reference[1].tolist() == [300]
    image = cv2.imread(str(IMAGES[0]))
    assert_same_detections(reference, edge, feeds, image.shape[:2], spec, edge_band=1.5)


def test_arm_conversion_needs_no_compat_rewrite(small_models):
    nb = optimize(small_models["dirs"]["edge"], small_models["root"] / "edge_arm", target="arm")
    assert nb.is_file() and nb.stat().st_size > 1_000_000


# ----------------------------------------------------------------------------- full size
@pytest.mark.slow
def test_full_size_80_classes_lite_matches_paddle_and_reference(tmp_path):
    net = PPYOLOESeg(num_classes=80, input_size=(640, 640), graph="edge")
    spec = ppyoloe_seg_spec("edge", [str(i) for i in range(80)], (640, 640))
    feeds = feeds_for(IMAGES[0], spec)
    state = seeded_state(net, seed=11, class_gain=100.0, class_shift=-40.0, sample=feeds["image"])  # ~50 detections
    edge_dir = export_ppyoloe_seg(tmp_path / "edge", graph="edge", weights=state)
    assert ModelSpec.from_inference_yml(edge_dir / "inference.yml").labels[0] == "person"
    nb = optimize(edge_dir, tmp_path / "edge_x86", target="x86")
    edge = create_backend("paddle", edge_dir).run(feeds)
    lite = create_backend("lite", nb).run(feeds)
    net.graph = "reference"
    reference = run_dygraph(net, feeds)
    assert 3 <= int(reference[1][0]) < 300
    image = cv2.imread(str(IMAGES[0]))
    assert edge[2].shape[1:] == (160, 160)
    assert assert_same_detections(reference, edge, feeds, image.shape[:2], spec) >= 0.99
    assert assert_same_detections(reference, lite, feeds, image.shape[:2], spec) >= 0.99


def test_build_network_dispatches_on_the_model_name(tmp_path):
    from export.networks import build_network

    net = build_network("PP-YOLOE_seg-S", num_classes=SMALL_CLASSES, input_size=SMALL, graph="reference")
    assert isinstance(net, PPYOLOESeg) and net.graph == "reference" and net.num_classes == SMALL_CLASSES
    with pytest.raises(ConfigError, match="PP-YOLOE_seg-S"):
        build_network("PP-YOLOE_plus-S")
    with pytest.raises(ConfigError, match="one label per class"):
        export_ppyoloe_seg(tmp_path / "x", num_classes=2, labels=["only-one"], input_size=SMALL)
