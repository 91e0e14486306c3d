"""`edge export` end to end on the stand-in network, and its failure modes: nothing half-written."""
import json
import os
import shutil
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

import export  # noqa: F401
from edge.errors import ExportError
from edge.bundle import open_bundle
from edge.pipeline import create_pipeline
from export.exporter import ExportOptions, export_model
from export.precision import Precision
from standin import export_standin
from export.optimize import nb_kernels
from export.source import resolve_source

IMAGES = Path(__file__).resolve().parents[2] / "samples" / "coco"


@pytest.fixture(scope="module")
def standin_dir(tmp_path_factory) -> Path:
    return export_standin(tmp_path_factory.mktemp("src") / "standin", graph="edge", input_size=(64, 64))


def options(out, **kw):
    return ExportOptions(out_dir=out, calib_dir=IMAGES, calib_count=6, **kw)


def test_x86_bundle_runs_and_matches_paddle(standin_dir, tmp_path):
    result = export_model(resolve_source(model_dir=standin_dir), options(tmp_path, target="x86"))
    assert result.path == tmp_path / "StandIn-Seg-x86"
    manifest = json.loads((result.path / "manifest.json").read_text())
    check = manifest["verification"]["fp32_lite_x86_vs_paddle"]
    assert check["matched"] == check["reference_instances"] > 0
    assert check["max_box_diff_px"] <= 1e-3 and check["min_mask_agreement"] >= 0.99
    assert set(result.step_seconds) == {"program", "compat", "optimize", "verify", "bundle"}
    res = next(create_pipeline(config={"SubModules": {"InstanceSegmentation": {"model_dir": str(result.path)}}})
               .predict(str(IMAGES / "orange_71.jpg")))
    assert res.computed_by == "lite" and res["boxes"]


def test_arm_int8_bundle_has_int8_kernels_and_records_calibration(standin_dir, tmp_path):
    result = export_model(resolve_source(model_dir=standin_dir), options(tmp_path, target="arm", precision=Precision.INT8))
    assert result.path.name == "StandIn-Seg-arm-int8"
    spec, manifest = open_bundle(result.path).spec, result.manifest
    assert manifest["precision"] == "int8" and manifest["target"] == "arm"
    quant = manifest["quantization"]
    assert quant["count"] == 6 and len(quant["sha256"]) == 64
    kernels = nb_kernels(result.path / "model.nb")
    assert any(k.precision == "int8" and k.op_type == "conv2d" for k in kernels)
    assert "int8_program_vs_fp32" in manifest["verification"]
    assert spec.mask_layout.kind == "lowres"


def test_target_paddle_stops_before_opt(standin_dir, tmp_path):
    result = export_model(resolve_source(model_dir=standin_dir), options(tmp_path, target="paddle", verify=False))
    assert sorted(p.name for p in result.path.iterdir()) == ["inference.pdiparams", "inference.pdmodel", "inference.yml"]


def test_server_only_model_is_explained():
    with pytest.raises(ExportError, match="served, not exported"):
        resolve_source(model="MaskRCNN-ResNet50-FPN")


def test_offline_zoo_download_names_the_way_out(monkeypatch, tmp_path):
    monkeypatch.setenv("EDGE_CACHE", str(tmp_path))
    monkeypatch.setenv("EDGE_MODEL_MIRROR", "http://127.0.0.1:9")  # closed port: like having no network
    with pytest.raises(ExportError, match="--model-dir"):
        resolve_source(model="PP-YOLOE_seg-S")


def test_pir_directory_needs_weights(standin_dir, tmp_path):
    pir = tmp_path / "pir"
    pir.mkdir()
    shutil.copy(standin_dir / "inference.yml", pir)
    shutil.copy(standin_dir / "inference.pdiparams", pir)
    (pir / "inference.json").write_text("{}")
    with pytest.raises(ExportError, match="--weights"):
        resolve_source(model_dir=pir)


def test_missing_params_and_corrupt_program(standin_dir, tmp_path):
    broken = tmp_path / "broken"
    shutil.copytree(standin_dir, broken)
    (broken / "inference.pdiparams").unlink()
    with pytest.raises(ExportError, match="inference.pdiparams"):
        resolve_source(model_dir=broken)
    shutil.copy(standin_dir / "inference.pdiparams", broken)
    (broken / "inference.pdmodel").write_bytes(b"\x08\x01garbage" * 10)
    out = tmp_path / "out"
    with pytest.raises(ExportError):
        export_model(resolve_source(model_dir=broken), options(out, target="x86"))
    assert not out.exists() or not any(out.iterdir())


def test_unwritable_output_directory(standin_dir, tmp_path):
    if os.geteuid() == 0:
        target = tmp_path / "file-not-dir"
        target.write_text("x")  # root ignores permissions: a file where a directory must go
        out = target / "sub"
    else:
        out = tmp_path / "ro"
        out.mkdir()
        out.chmod(0o500)
    with pytest.raises(ExportError):
        export_model(resolve_source(model_dir=standin_dir), options(out, target="x86", verify=False))


def test_interrupted_export_leaves_nothing(standin_dir, tmp_path):
    def interrupt(step, seconds):
        if step == "optimize":
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        export_model(resolve_source(model_dir=standin_dir), options(tmp_path / "out", target="x86"), on_step=interrupt)
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


def test_existing_bundle_survives_a_failed_export(standin_dir, tmp_path):
    good = export_model(resolve_source(model_dir=standin_dir), options(tmp_path, target="x86", verify=False)).path
    before = (good / "model.nb").read_bytes()

    def fail(step, seconds):
        if step == "optimize":
            raise ExportError("simulated failure")

    with pytest.raises(ExportError):
        export_model(resolve_source(model_dir=standin_dir), options(tmp_path, target="x86", verify=False), on_step=fail)
    assert (good / "model.nb").read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == [good.name]


def test_cli_export_prints_report_with_next_command(standin_dir, tmp_path, capsys):
    from edge.cli import main

    assert main(["export", "--model-dir", str(standin_dir), "--target", "x86", "--out", str(tmp_path),
                 "--calib", str(IMAGES), "--calib-count", "3"]) == 0
    out = capsys.readouterr().out
    assert "verify fp32_lite_x86_vs_paddle" in out and f"edge predict --model {tmp_path / 'StandIn-Seg-x86'}" in out
    assert main(["export", "--model", "SOLOv2"]) == 2
    assert "served, not exported" in capsys.readouterr().err


def test_labelled_data_adds_mask_ap_of_both_sides_to_the_manifest(tmp_path):
    samples = Path(__file__).resolve().parents[2] / "samples" / "synthetic"
    labels = ["circle", "rectangle", "triangle", "star", "ring"]
    model_dir = export_standin(tmp_path / "m", num_classes=5, labels=labels)
    opts = options(tmp_path / "out", target="arm", precision=Precision.INT8, eval_data=samples / "annotations.json")
    verification = export_model(resolve_source(model_dir=model_dir), opts).manifest["verification"]
    fp32, int8 = verification["fp32_lite_x86_vs_paddle"], verification["int8_program_vs_fp32"]
    assert {"paddle_mask_ap", "lite_mask_ap", "mask_ap_drop"} <= set(fp32)
    assert {"fp32_mask_ap", "int8_mask_ap", "mask_ap_drop"} <= set(int8)
    assert abs(fp32["mask_ap_drop"]) <= 0.002  # the same network on two engines


def _start_cli_export(standin_dir: Path, tmp_path: Path, out: Path) -> "subprocess.Popen":
    scratch_root = tmp_path / "tmp"
    scratch_root.mkdir()
    env = {**os.environ, "TMPDIR": str(scratch_root), "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen([sys.executable, "-m", "edge.cli", "export", "--model-dir", str(standin_dir),
                             "--target", "x86", "--out", str(out), "--calib", str(IMAGES), "--calib-count", "3"],
                            cwd=Path(__file__).resolve().parents[2], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


@pytest.mark.parametrize("sig,code,word", [(signal.SIGTERM, 143, "SIGTERM"), (signal.SIGINT, 130, "SIGINT")],
                         ids=["SIGTERM", "SIGINT"])
def test_signal_during_export_removes_the_scratch_and_exits_with_one_line(standin_dir, tmp_path, sig, code, word):
    out = tmp_path / "out"
    process = _start_cli_export(standin_dir, tmp_path, out)
    try:
        deadline = time.monotonic() + 120
        while not list((tmp_path / "tmp").glob("edge-export-*/fp32/inference.yml")):  # past the compat step
            assert process.poll() is None and time.monotonic() < deadline, process.communicate()
            time.sleep(0.05)
        process.send_signal(sig)
        stdout, stderr = process.communicate(timeout=120)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == code, stderr
    assert "Traceback" not in stderr and "C++" not in stderr, stderr
    assert [line for line in stderr.splitlines() if line.startswith("edge export:")] == [
        f"edge export: {'terminated' if sig == signal.SIGTERM else 'interrupted'} ({word}); nothing half-written was left"]
    assert list((tmp_path / "tmp").iterdir()) == []  # the scratch directories (edge-export-*, edge-opt-*)
    assert not out.exists() or list(out.iterdir()) == []


def test_unusable_out_is_reported_before_any_work(standin_dir, tmp_path):
    not_a_dir = tmp_path / "file-not-dir"
    not_a_dir.write_text("x")
    process = subprocess.run([sys.executable, "-m", "edge.cli", "export", "--model-dir", str(standin_dir),
                              "--target", "x86", "--out", str(not_a_dir / "sub")],
                             cwd=Path(__file__).resolve().parents[2], capture_output=True, text=True, timeout=300)
    assert process.returncode == 2, process.stderr
    assert "--out" in process.stderr and str(not_a_dir / "sub") in process.stderr, process.stderr
    assert "program" not in process.stdout, process.stdout  # no step ran


@pytest.mark.parametrize("target,name", [("x86", "StandIn-Seg-x86"), ("paddle", "StandIn-Seg-paddle")])
def test_a_directory_that_is_not_an_earlier_export_is_never_replaced(standin_dir, tmp_path, target, name):
    user_dir = tmp_path / name
    user_dir.mkdir()
    (user_dir / "thesis.docx").write_bytes(b"four years of work")
    steps = []
    with pytest.raises(ExportError, match="exists and is not .*nothing was changed"):
        export_model(resolve_source(model_dir=standin_dir), options(tmp_path, target=target, verify=False),
                     on_step=lambda step, seconds: steps.append(step))
    assert steps == []  # refused before any work
    assert sorted(p.name for p in user_dir.iterdir()) == ["thesis.docx"]
    assert (user_dir / "thesis.docx").read_bytes() == b"four years of work"
    assert sorted(p.name for p in tmp_path.iterdir()) == [name]


def test_bundles_are_written_with_the_users_umask(standin_dir, tmp_path):
    """mkdtemp makes the staging directory 0700; another user of the board must be able to read a bundle."""
    previous = os.umask(0o022)
    try:
        path = export_model(resolve_source(model_dir=standin_dir), options(tmp_path / "shared", target="x86",
                                                                          verify=False)).path
        program = export_model(resolve_source(model_dir=standin_dir), options(tmp_path / "shared", target="paddle",
                                                                             verify=False)).path
        os.umask(0o077)
        private = export_model(resolve_source(model_dir=standin_dir), options(tmp_path / "private", target="x86",
                                                                             verify=False)).path
    finally:
        os.umask(previous)
    for folder in (path, program):
        assert stat.S_IMODE(folder.stat().st_mode) == 0o755, folder
        assert {stat.S_IMODE(f.stat().st_mode) for f in folder.iterdir()} == {0o644}, folder
    assert stat.S_IMODE(private.stat().st_mode) == 0o700
    assert {stat.S_IMODE(f.stat().st_mode) for f in private.iterdir()} == {0o600}
