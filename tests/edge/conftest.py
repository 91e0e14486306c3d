"""Runtime fixtures: the stand-in network, exported once per session in both mask layouts,
as a Paddle inference directory and as an x86 Paddle Lite bundle."""
from __future__ import annotations

import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import pytest

from edge.spec import ModelSpec

DATA = Path(__file__).resolve().parents[1] / "data"
STANDIN_SIZE = (64, 64)


@dataclass
class StandIn:
    inference_dir: Path
    bundle_dir: Path
    spec: ModelSpec


def _x86_nb(model_dir: Path) -> Path:
    opt = Path(sys.executable).parent / "paddle_lite_opt"
    out = model_dir.parent / f"{model_dir.name}_x86"
    subprocess.run(
        [str(opt), f"--model_file={model_dir / 'inference.pdmodel'}", f"--param_file={model_dir / 'inference.pdiparams'}",
         "--valid_targets=x86", "--optimize_out_type=naive_buffer", f"--optimize_out={out}"],
        check=True, capture_output=True,
    )
    return out.with_suffix(".nb")


def _build(root: Path, graph: str, input_size=STANDIN_SIZE) -> StandIn:
    from export.bundle import write_bundle
    from export.networks.standin import export_standin

    model_dir = export_standin(root / f"standin_{graph}", graph=graph, input_size=input_size)
    spec = ModelSpec.from_inference_yml(model_dir / "inference.yml")
    h, w = input_size
    bundle = write_bundle(root / "bundles", f"standin-{graph}-x86", _x86_nb(model_dir), spec,
                          [[1, 2], [1, 3, h, w], [1, 2]], extra={"target": "x86"})
    return StandIn(model_dir, bundle, spec)


@pytest.fixture(scope="session")
def standin_edge(tmp_path_factory) -> StandIn:
    return _build(tmp_path_factory.mktemp("standin"), "edge")


@pytest.fixture(scope="session")
def standin_reference(tmp_path_factory) -> StandIn:
    return _build(tmp_path_factory.mktemp("standin"), "reference")


@pytest.fixture(scope="session")
def sample_images():
    paths = sorted((DATA / "images").glob("*.jpg"))
    assert paths, "tests/data/images holds the sample photos"
    return paths


@pytest.fixture()
def photo(sample_images) -> np.ndarray:
    return cv2.imread(str(sample_images[0]))
