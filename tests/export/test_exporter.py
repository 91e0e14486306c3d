"""`edge export` end to end on the stand-in network, and its failure modes: nothing half-written."""
import json
import os
import shutil
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
