"""Pre- and post-processing of a 1920x1080 frame with 100 candidates (20 kept) vs model time.

The ratio reported (pre+post over model time) is measured side by side in one process, for the
stand-in network (64x64, x86 Lite) and a 640x640 model (the stand-in at 640x640, or
PP-YOLOE_seg-S's edge graph when its network is available), so machine noise cancels out.
"""
import time
from pathlib import Path

import numpy as np
import pytest

from edge.backends import create_backend
from edge.postprocess import postprocess
from edge.preprocess import Preprocessor
from edge.spec import MaskLayout, ModelSpec

CANDIDATES, KEPT = 100, 20
SPEC_640 = ModelSpec("bench", "PPYOLOE", [
    {"type": "Resize", "target_size": [640, 640], "keep_ratio": False, "interp": 2},
    {"type": "NormalizeImage", "mean": [0, 0, 0], "std": [1, 1, 1], "norm_type": "none"},
    {"type": "Permute"}], [f"c{i}" for i in range(80)])


def candidates(hw=(1080, 1920)):
    rng = np.random.default_rng(0)
    h, w = hw
    scores = np.concatenate([rng.uniform(0.6, 0.99, KEPT), rng.uniform(0.0, 0.4, CANDIDATES - KEPT)])
    x1, y1 = rng.uniform(0, w * 0.7, CANDIDATES), rng.uniform(0, h * 0.7, CANDIDATES)
    bw, bh = rng.uniform(50, w * 0.3, CANDIDATES), rng.uniform(50, h * 0.3, CANDIDATES)
    bbox = np.stack([rng.integers(0, 80, CANDIDATES), scores, x1, y1, x1 + bw, y1 + bh], 1).astype(np.float32)
    return bbox, np.asarray([CANDIDATES], np.int32)


def lowres_masks():
    yy, xx = np.mgrid[0:160, 0:160]
    return np.stack([((xx - 80 - i) ** 2 + (yy - 80) ** 2 < 40 ** 2).astype(np.float32) for i in range(CANDIDATES)])


def test_preprocess_1080p_to_640(benchmark, full_hd_image):
    pre = Preprocessor(SPEC_640)
    feeds = benchmark(pre, full_hd_image)
    assert feeds["image"].shape == (1, 3, 640, 640)


def test_postprocess_lowres_masks_100_candidates_20_kept(benchmark):
    bbox, num = candidates()
    masks = lowres_masks()
    spec = ModelSpec("bench", "PPYOLOE", [], [f"c{i}" for i in range(80)], mask_layout=MaskLayout("lowres", 4, 0.5))
    out = benchmark(postprocess, bbox, num, masks, (1080, 1920), (640 / 1080, 640 / 1920), spec, 0.5)
    assert len(out.boxes) == KEPT


def test_postprocess_full_masks_100_candidates_20_kept(benchmark):
    """PaddleDetection's layout: 100 full-size masks (what the reference graphs output)."""
    bbox, num = candidates()
    masks = np.zeros((CANDIDATES, 1080, 1920), np.uint8)
    masks[:, 200:800, 300:1500] = 1
    spec = ModelSpec("bench", "DETR", [], [f"c{i}" for i in range(80)])
    out = benchmark(postprocess, bbox, num, masks, (1080, 1920), (640 / 1080, 640 / 1920), spec, 0.5)
    assert len(out.boxes) == KEPT


def _median_seconds(fn, rounds):
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return float(np.median(times))


def ppyoloe_seg_bundle(root: Path) -> Path:
    """PP-YOLOE_seg-S's edge graph, 640x640, 80 classes (seeded random weights), as an x86 bundle."""
    import paddle

    from export.bundle import write_bundle
    from export.networks.ppyoloe_seg import export_ppyoloe_seg
    from export.optimize import optimize

    paddle.seed(0)
    model_dir = export_ppyoloe_seg(root / "ppyoloe_seg", graph="edge")
    nb = optimize(model_dir, root / "ppyoloe_seg_x86", "x86")
    spec = ModelSpec.from_inference_yml(model_dir / "inference.yml")
    return write_bundle(root / "bundles", "ppyoloe-seg-x86", nb, spec, [[1, 2], [1, 3, 640, 640], [1, 2]],
                        extra={"target": "x86"})


@pytest.mark.parametrize("model_name", ["standin-64", "standin-640", "PP-YOLOE_seg-S-640"])
def test_prepost_over_model_time_ratio(benchmark, full_hd_image, tmp_path_factory, request, model_name):
    """Side by side in one run: pre (1080p -> model input) + post (100 candidates, 20 kept) vs model."""
    from edge.models import open_model_dir
    from standin import standin_bundle

    root = tmp_path_factory.mktemp("bench")
    if model_name.startswith("standin"):
        input_size = int(model_name.split("-")[1])
        _, bundle = standin_bundle(root, "edge", (input_size, input_size))
    else:
        request.getfixturevalue("long_benchmark")  # minutes on 2 cores: `make bench` only
        input_size, bundle = 640, ppyoloe_seg_bundle(root)
    model = open_model_dir(bundle)
    backend = create_backend("lite", model.path)
    pre = Preprocessor(model.spec)
    feeds = pre(full_hd_image)
    bbox, num = candidates()
    stride = model.spec.mask_layout.stride
    masks = lowres_masks()[:, : input_size // stride, : input_size // stride]
    scale = feeds["scale_factor"][0]
    post = lambda: postprocess(bbox, num, masks, (1080, 1920), scale, model.spec, 0.5)  # noqa: E731
    rounds = 20 if input_size == 64 else 5
    t_pre = _median_seconds(lambda: pre(full_hd_image), rounds)
    t_post = _median_seconds(post, rounds)
    t_model = _median_seconds(lambda: backend.run(feeds), rounds)
    benchmark.extra_info.update({"pre_ms": t_pre * 1e3, "post_ms": t_post * 1e3, "model_ms": t_model * 1e3,
                                 "prepost_over_model": (t_pre + t_post) / t_model})
    print(f"\n[{model.spec.model_name} {input_size}x{input_size}, lite x86] pre {t_pre*1e3:.2f} ms, post {t_post*1e3:.2f} ms, "
          f"model {t_model*1e3:.2f} ms -> (pre+post)/model = {(t_pre + t_post) / t_model:.2f}")
    benchmark.pedantic(backend.run, args=(feeds,), rounds=3 if input_size == 640 else 20)
