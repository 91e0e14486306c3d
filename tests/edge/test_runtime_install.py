"""The runtime installs and runs alone: `pip install .[lite]` in a clean virtual environment (no
paddlepaddle) runs `edge predict` on a bundle end to end, and asks for the exporter by name when
a command needs it."""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
import venv
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def runtime_only_venv(tmp_path_factory) -> Path:
    """A fresh venv with the project installed with the `lite` extra only (pip's cache makes it quick)."""
    root = tmp_path_factory.mktemp("runtime_only")
    source = root / "source"  # a copy: pip builds in the source tree, which must stay clean
    shutil.copytree(ROOT, source, ignore=shutil.ignore_patterns(
        ".git", ".venv", "build", "edge_models", "output", "*.egg-info", "__pycache__", ".pytest_cache", "tests"))
    env_dir = root / "venv"
    venv.EnvBuilder(with_pip=True).create(env_dir)
    python = env_dir / "bin" / "python"
    install = subprocess.run(
        [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
         "-c", str(ROOT / "constraints.txt"), f"{source}[lite]"],
        capture_output=True, text=True, timeout=900)
    assert install.returncode == 0, install.stderr[-3000:]
    return env_dir


def run(env_dir: Path, *args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([str(env_dir / "bin" / "edge"), *args], capture_output=True, text=True, cwd=cwd,
                          timeout=300, env={"PATH": f"{env_dir / 'bin'}:/usr/bin:/bin", "EDGE_CACHE": str(cwd / "cache")})


def test_no_paddle_in_the_runtime_install(runtime_only_venv):
    probe = subprocess.run([str(runtime_only_venv / "bin" / "python"), "-c", "import paddle"], capture_output=True)
    assert probe.returncode != 0, "the lite extra must not pull in paddlepaddle"


def test_predict_on_a_bundle_without_paddle(runtime_only_venv, standin_edge, sample_images, tmp_path):
    result = run(runtime_only_venv, "predict", "--model", str(standin_edge.bundle_dir), "--input",
                 str(sample_images[0]), "--threshold", "0.3", "--save_path", str(tmp_path / "out"), cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    saved = json.loads((tmp_path / "out" / f"{sample_images[0].stem}_res.json").read_text())
    assert "res" not in saved  # PaddleX writes the inner dict
    boxes = saved["boxes"]

    from edge.pipeline import create_pipeline  # the same bundle in this (full) environment

    pipeline = create_pipeline(config={"SubModules": {"InstanceSegmentation": {"model_dir": str(standin_edge.bundle_dir)}}})
    expected = next(iter(pipeline.predict(str(sample_images[0]), threshold=0.3)))["boxes"]
    assert [b["cls_id"] for b in boxes] == [b["cls_id"] for b in expected] and boxes
    for got, want in zip(boxes, expected):
        assert max(abs(a - b) for a, b in zip(got["coordinate"], want["coordinate"])) < 1e-3


@pytest.mark.parametrize("args", [["export"], ["predict", "--input", "x.jpg"]], ids=["export", "demo-model"])
def test_exporter_commands_name_the_missing_extra(runtime_only_venv, tmp_path, args):
    """`edge export`, and the demo model's first-use export, need paddlepaddle: one clear line, exit 2."""
    (tmp_path / "x.jpg").write_bytes((ROOT / "samples" / "coco" / "000000014439.jpg").read_bytes())
    result = run(runtime_only_venv, *args, cwd=tmp_path)
    assert result.returncode == 2, result.stderr[-2000:]
    assert "paddlex-edge-seg[export]" in result.stderr and "Traceback" not in result.stderr
