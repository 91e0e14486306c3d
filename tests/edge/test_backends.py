"""The lite and paddle backends on the stand-in network: same answers, clear errors."""
import logging
from pathlib import Path

import numpy as np
import pytest

from edge.backends import create_backend
from edge.backends.lite import LiteBackend
from edge.errors import BackendError, ConfigError, ModelError
from edge.pipeline import create_pipeline
from edge.preprocess import Preprocessor


def pipeline_for(model_dir, backend="auto"):
    return create_pipeline(config={"SubModules": {"InstanceSegmentation": {"model_dir": str(model_dir), "backend": backend}}})


@pytest.mark.parametrize("layout", ["edge", "reference"])
def test_lite_and_paddle_give_the_same_results(layout, request, sample_images):
    model = request.getfixturevalue(f"standin_{layout}")
    lite, paddle = pipeline_for(model.bundle_dir), pipeline_for(model.inference_dir)
    compared = 0
    for a, b in zip(lite.predict([str(p) for p in sample_images], threshold=0.3),
                    paddle.predict([str(p) for p in sample_images], threshold=0.3)):
        assert (a.computed_by, b.computed_by) == ("lite", "paddle")
        assert [x["cls_id"] for x in a["boxes"]] == [x["cls_id"] for x in b["boxes"]]
        for ba, bb, ma, mb in zip(a["boxes"], b["boxes"], a["masks"], b["masks"]):
            np.testing.assert_allclose(ba["coordinate"], bb["coordinate"], atol=1e-4)
            assert abs(ba["score"] - bb["score"]) <= 1e-5
            assert ma.shape == mb.shape and (ma == mb).mean() >= 0.999
            compared += 1
    assert compared > 20  # the stand-in keeps most of its 16 candidates at threshold 0.3


def test_program_checked_against_its_bundle_sees_the_bundles_tensor(standin_edge, photo):
    """`as_paddlex=False` (the exporter's bundle-vs-program check) feeds the program exactly the bundle's
    tensor (the default gives an inference directory PaddleX's resize, docs/DIFFERENCES.md)."""
    from edge.models import open_model_dir
    from edge.predictor import LocalPredictor

    bundle = LocalPredictor(open_model_dir(standin_edge.bundle_dir), "lite").preprocess
    checked = LocalPredictor(open_model_dir(standin_edge.inference_dir), "paddle", as_paddlex=False).preprocess
    as_paddlex = LocalPredictor(open_model_dir(standin_edge.inference_dir), "paddle").preprocess
    assert (bundle.portable_resize, checked.portable_resize, as_paddlex.portable_resize) == (True, True, False)
    bundle, checked = bundle(photo), checked(photo)
    assert checked.keys() == bundle.keys()
    for name in bundle:
        np.testing.assert_array_equal(checked[name], bundle[name])


def test_lite_model_from_buffer_matches_file(standin_edge, photo):
    feeds = Preprocessor(standin_edge.spec)(photo)
    nb = standin_edge.bundle_dir / "model.nb"
    a = LiteBackend(nb).run(feeds)
    b = LiteBackend(nb.read_bytes()).run(feeds)
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x, y)


def test_threads_and_power_mode_are_feature_detected(standin_edge, caplog):
    with caplog.at_level(logging.WARNING):
        backend = LiteBackend(standin_edge.bundle_dir / "model.nb", threads=2, power_mode="LITE_POWER_HIGH")
    assert backend.input_names == ["im_shape", "image", "scale_factor"]
    # the x86 wheel lacks both setters: a warning, not a crash (an ARM build would apply them)
    import paddlelite.lite as lite
    if not hasattr(lite.MobileConfig(), "set_threads"):
        assert "set_threads" in caplog.text


def test_unknown_power_mode_is_an_error(standin_edge):
    with pytest.raises(BackendError, match="power mode"):
        LiteBackend(standin_edge.bundle_dir / "model.nb", power_mode="TURBO")


def test_corrupt_nb_fails_with_a_clear_error(tmp_path):
    bad = tmp_path / "model.nb"
    bad.write_bytes(b"\x00garbage" * 100)
    with pytest.raises(BackendError, match="could not load"):
        LiteBackend(bad)


def test_missing_nb(tmp_path):
    with pytest.raises(BackendError, match="does not exist"):
        LiteBackend(tmp_path / "nope.nb")


def test_inference_dir_missing_params_is_named(standin_edge, tmp_path):
    broken = tmp_path / "broken"
    broken.mkdir()
    for name in ("inference.yml", "inference.pdmodel"):
        (broken / name).write_bytes((standin_edge.inference_dir / name).read_bytes())
    with pytest.raises(ModelError, match="inference.pdiparams"):
        pipeline_for(broken)


def test_missing_input_is_named(standin_edge):
    backend = create_backend("paddle", standin_edge.inference_dir)
    with pytest.raises(BackendError, match="scale_factor"):
        backend.run({"im_shape": np.zeros((1, 2), np.float32), "image": np.zeros((1, 3, 64, 64), np.float32)})


def test_backend_and_model_kind_must_agree(standin_edge):
    with pytest.raises(ConfigError, match="bundle"):
        pipeline_for(standin_edge.inference_dir, backend="lite")
    with pytest.raises(ConfigError, match="inference directory"):
        pipeline_for(standin_edge.bundle_dir, backend="paddle")


def test_truncated_nb_fails_with_a_clear_error_and_the_process_survives(standin_edge, tmp_path):
    cut = tmp_path / "cut.nb"
    data = (standin_edge.bundle_dir / "model.nb").read_bytes()
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(BackendError, match="could not load"):
        LiteBackend(cut)


PIR_SAVE = r"""
import sys
from standin import StandInSeg, standin_spec
import paddle
from edge.spec import ModelSpec
paddle.seed(0)
layer = StandInSeg(3, (64, 64), "edge")
layer.eval()
spec = [paddle.static.InputSpec([1, 2], "float32", "im_shape"), paddle.static.InputSpec([1, 3, 64, 64], "float32", "image"),
        paddle.static.InputSpec([1, 2], "float32", "scale_factor")]
paddle.jit.save(paddle.jit.to_static(layer, input_spec=spec, full_graph=True), sys.argv[1] + "/inference")
standin_spec("edge", (64, 64), ["class0", "class1", "class2"]).write_inference_yml(sys.argv[1] + "/inference.yml")
"""


def test_paddle_backend_runs_pir_programs(standin_edge, tmp_path, photo):
    """Official PaddleX 3 models are PIR `inference.json`: the server path runs them (saved with PIR on)."""
    import os
    import subprocess
    import sys

    tests_dir = str(Path(__file__).resolve().parents[1])  # where the stand-in network lives
    env = {**os.environ, "FLAGS_enable_pir_api": "1", "PYTHONPATH": tests_dir}
    subprocess.run([sys.executable, "-c", PIR_SAVE, str(tmp_path)], check=True, env=env, capture_output=True)
    assert (tmp_path / "inference.json").exists() and not (tmp_path / "inference.pdmodel").exists()
    pir = list(pipeline_for(tmp_path).predict(photo))[0]
    legacy = list(pipeline_for(standin_edge.inference_dir).predict(photo))[0]
    assert [b["cls_id"] for b in pir["boxes"]] == [b["cls_id"] for b in legacy["boxes"]]
    for a, b in zip(pir["boxes"], legacy["boxes"]):
        np.testing.assert_allclose(a["coordinate"], b["coordinate"], atol=1e-4)


WITHOUT_LITE = ("import sys; sys.modules['paddlelite'] = None  # as on a board where the wheel is not installed\n"
                "from edge.cli import main; sys.exit(main(sys.argv[1:]))")


def test_without_paddlelite_auto_runs_the_demo_model_on_paddle_inference(tmp_path):
    """An aarch64 board without the project's paddlelite wheel: `backend: auto` takes Paddle Inference and says so."""
    import json
    import subprocess
    import sys

    sample = Path(__file__).resolve().parents[2] / "samples" / "synthetic" / "000001.jpg"
    env = {**__import__("os").environ, "EDGE_CACHE": str(tmp_path / "cache")}
    run = subprocess.run([sys.executable, "-c", WITHOUT_LITE, "predict", "--input", str(sample)],
                         capture_output=True, text=True, env=env, timeout=600)
    assert run.returncode == 0, run.stderr[-2000:]
    assert "paddlelite is not installed: backend auto runs PP-YOLOE_seg-demo on Paddle Inference" in run.stderr
    assert json.loads(run.stdout)["res"]["boxes"]
    assert (tmp_path / "cache" / "demo" / "PP-YOLOE_seg-demo-paddle" / "inference.yml").is_file()


def test_without_paddlelite_a_bundle_names_the_wheel_to_install(standin_edge):
    import subprocess
    import sys

    sample = Path(__file__).resolve().parents[2] / "samples" / "synthetic" / "000001.jpg"
    run = subprocess.run([sys.executable, "-c", WITHOUT_LITE, "predict", "--model", str(standin_edge.bundle_dir),
                          "--input", str(sample)], capture_output=True, text=True, timeout=300)
    assert run.returncode != 0
    assert "--find-links third_party/paddlelite-aarch64" in run.stderr, run.stderr[-1000:]
