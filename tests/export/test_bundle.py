"""The bundle stage: atomic writes, manifest contract, refusal of damaged bundles."""
from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import pytest
import yaml

import export  # noqa: F401
from edge.bundle import SCHEMA_VERSION, open_bundle
from edge.errors import ExportError, ManifestError
from edge.spec import MaskLayout, ModelSpec
from export.bundle import write_bundle

SPEC = ModelSpec(
    model_name="PP-YOLOE_seg-S",
    arch="PPYOLOESeg",
    preprocess=[
        {"type": "Resize", "target_size": [640, 640], "keep_ratio": False, "interp": 2},
        {"type": "NormalizeImage", "mean": [0.0, 0.0, 0.0], "std": [1.0, 1.0, 1.0], "norm_type": "none"},
        {"type": "Permute"},
    ],
    labels=["cat", "dog"],
    draw_threshold=0.4,
    mask_layout=MaskLayout(kind="lowres", stride=4, threshold=0.5),
)
SHAPES = [[1, 2], [1, 3, 640, 640], [1, 2]]
QUANT = {"scheme": "int8-ptq", "calibration": {"count": 8, "sha256": "ab" * 32}, "kept_float": ["sigmoid_0.tmp_0"]}


@pytest.fixture
def nb_file(tmp_path) -> Path:
    path = tmp_path / "opt_out" / "model.nb"
    path.parent.mkdir()
    path.write_bytes(os.urandom(4096))
    return path


def _leftovers(out_root: Path):
    return sorted(p.name for p in out_root.iterdir() if p.name.startswith("."))


def test_round_trip(tmp_path, nb_file):
    out = tmp_path / "edge_models"
    extra = {"target": "arm", "precision": "int8", "quantization": QUANT, "verification": {"box_max_abs_diff": 1e-5}}
    bundle = write_bundle(out, "PP-YOLOE_seg-S-arm-int8", nb_file, SPEC, SHAPES, extra, None)
    assert bundle == out / "PP-YOLOE_seg-S-arm-int8"
    assert sorted(p.name for p in bundle.iterdir()) == ["manifest.json", "model.nb", "pipeline.yaml"]

    opened = open_bundle(bundle)
    spec, manifest = opened.spec, opened.manifest
    assert spec == SPEC
    assert opened.model_path.read_bytes() == nb_file.read_bytes()
    assert manifest["sha256"] == hashlib.sha256(nb_file.read_bytes()).hexdigest()
    assert manifest["schema_version"] == SCHEMA_VERSION
    assert manifest["inputs"][1] == {"name": "image", "shape": [1, 3, 640, 640], "dtype": "float32"}
    assert (manifest["target"], manifest["precision"], manifest["model_file"]) == ("arm", "int8", "model.nb")
    assert manifest["quantization"] == QUANT and manifest["verification"] == {"box_max_abs_diff": 1e-5}
    assert manifest["versions"]["paddle"] == "3.0.0" and manifest["versions"]["paddlelite"] == "2.13rc0"
    assert manifest["created"].endswith("+00:00")

    pipeline = yaml.safe_load((bundle / "pipeline.yaml").read_text())
    sub = pipeline["SubModules"]["InstanceSegmentation"]
    assert pipeline["pipeline_name"] == "instance_segmentation"
    assert sub["model_dir"] == "." and sub["model_name"] == "PP-YOLOE_seg-S" and sub["threshold"] == 0.4
    assert _leftovers(out) == []


def test_given_pipeline_config_is_kept_but_points_at_the_bundle(tmp_path, nb_file):
    config = {"pipeline_name": "instance_segmentation",
              "SubModules": {"InstanceSegmentation": {"model_name": "x", "model_dir": "/elsewhere", "batch_size": 2,
                                                      "threshold": 0.3}}}
    bundle = write_bundle(tmp_path, "b", nb_file, SPEC, SHAPES, {"target": "x86"}, config)
    sub = yaml.safe_load((bundle / "pipeline.yaml").read_text())["SubModules"]["InstanceSegmentation"]
    assert sub == {"model_name": "PP-YOLOE_seg-S", "model_dir": ".", "batch_size": 2, "threshold": 0.3,
                   "module_name": "instance_segmentation"}
    assert config["SubModules"]["InstanceSegmentation"]["model_dir"] == "/elsewhere", "caller's dict untouched"


def test_tampered_model_is_refused(tmp_path, nb_file):
    bundle = write_bundle(tmp_path, "b", nb_file, SPEC, SHAPES, {"target": "arm"})
    data = bytearray((bundle / "model.nb").read_bytes())
    data[100] ^= 0xFF
    (bundle / "model.nb").write_bytes(bytes(data))
    with pytest.raises(ManifestError, match="does not match .* recorded in"):
        open_bundle(bundle)


def test_truncated_manifest_is_refused(tmp_path, nb_file):
    bundle = write_bundle(tmp_path, "b", nb_file, SPEC, SHAPES, {"target": "arm"})
    text = (bundle / "manifest.json").read_text()
    (bundle / "manifest.json").write_text(text[: len(text) // 2])
    with pytest.raises(ManifestError, match="not valid JSON"):
        open_bundle(bundle)


def test_other_schema_version_is_refused(tmp_path, nb_file):
    bundle = write_bundle(tmp_path, "b", nb_file, SPEC, SHAPES, {"target": "arm"})
    manifest = json.loads((bundle / "manifest.json").read_text())
    manifest["schema_version"] = SCHEMA_VERSION + 1
    (bundle / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(ManifestError, match="schema_version"):
        open_bundle(bundle)


def test_missing_model_file_is_refused(tmp_path, nb_file):
    bundle = write_bundle(tmp_path, "b", nb_file, SPEC, SHAPES, {"target": "arm"})
    (bundle / "model.nb").unlink()
    with pytest.raises(ManifestError, match="model.nb is missing"):
        open_bundle(bundle)


def test_missing_nb_leaves_nothing(tmp_path):
    out = tmp_path / "out"
    with pytest.raises(ExportError, match="produced no .nb"):
        write_bundle(out, "b", tmp_path / "absent.nb", SPEC, SHAPES, {"target": "arm"})
    assert not (out / "b").exists()
    assert not out.exists() or _leftovers(out) == []


def test_failure_midway_leaves_nothing_and_keeps_the_old_bundle(tmp_path, nb_file):
    out = tmp_path / "out"
    old = write_bundle(out, "b", nb_file, SPEC, SHAPES, {"target": "arm"})
    old_manifest = (old / "manifest.json").read_text()
    new_nb = tmp_path / "new.nb"
    new_nb.write_bytes(b"new model")
    # model.nb is already copied into the staging dir when the manifest fails to serialise
    with pytest.raises(ExportError, match="writing bundle .* failed"):
        write_bundle(out, "b", new_nb, SPEC, SHAPES, {"target": "arm", "verification": {"bad": object()}})
    assert _leftovers(out) == []
    assert (old / "manifest.json").read_text() == old_manifest
    assert open_bundle(old).model_path.read_bytes() == nb_file.read_bytes()


def test_bad_extra_is_refused_before_anything_is_written(tmp_path, nb_file):
    with pytest.raises(ExportError, match="target"):
        write_bundle(tmp_path / "o", "b", nb_file, SPEC, SHAPES, {"target": "riscv"})
    with pytest.raises(ExportError, match="must not set"):
        write_bundle(tmp_path / "o", "b", nb_file, SPEC, SHAPES, {"target": "arm", "sha256": "0"})
    assert _leftovers(tmp_path / "o") == [] and not (tmp_path / "o" / "b").exists()


def test_replacing_an_existing_bundle(tmp_path, nb_file):
    write_bundle(tmp_path, "b", nb_file, SPEC, SHAPES, {"target": "arm", "precision": "fp32"})
    new_nb = tmp_path / "new.nb"
    new_nb.write_bytes(b"second export")
    bundle = write_bundle(tmp_path, "b", new_nb, SPEC, SHAPES, {"target": "arm", "precision": "int8"})
    opened = open_bundle(bundle)
    assert opened.model_path.read_bytes() == b"second export" and opened.manifest["precision"] == "int8"
    assert _leftovers(tmp_path) == []


def test_unwritable_out_dir_is_a_clear_error(tmp_path, nb_file):
    blocker = tmp_path / "a_file"
    blocker.write_text("not a directory")
    with pytest.raises(ExportError, match="cannot write bundles under .*--out"):
        write_bundle(blocker / "out", "b", nb_file, SPEC, SHAPES, {"target": "arm"})


@pytest.mark.skipif(os.geteuid() == 0, reason="root ignores directory permissions")
def test_read_only_out_dir_is_a_clear_error(tmp_path, nb_file):
    out = tmp_path / "ro"
    out.mkdir()
    out.chmod(0o555)
    try:
        with pytest.raises(ExportError, match="cannot write bundles under"):
            write_bundle(out, "b", nb_file, SPEC, SHAPES, {"target": "arm"})
        assert list(out.iterdir()) == []
    finally:
        out.chmod(0o755)


def test_bad_bundle_name_is_refused(tmp_path, nb_file):
    with pytest.raises(ExportError, match="plain directory name"):
        write_bundle(tmp_path, "../escape", nb_file, SPEC, SHAPES, {"target": "arm"})
