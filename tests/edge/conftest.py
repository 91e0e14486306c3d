"""Runtime fixtures: the stand-in network, exported once per session in both mask layouts,
as a Paddle inference directory and as an x86 Paddle Lite bundle."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import pytest

from edge.spec import ModelSpec

PHOTOS = Path(__file__).resolve().parents[2] / "samples" / "coco"
STANDIN_SIZE = (64, 64)


@dataclass
class StandIn:
    inference_dir: Path
    bundle_dir: Path
    spec: ModelSpec


def _build(root: Path, graph: str) -> StandIn:
    from standin import standin_bundle

    model_dir, bundle = standin_bundle(root, graph, STANDIN_SIZE, target="x86")
    return StandIn(model_dir, bundle, ModelSpec.from_inference_yml(model_dir / "inference.yml"))


@pytest.fixture(scope="session")
def standin_edge(tmp_path_factory) -> StandIn:
    return _build(tmp_path_factory.mktemp("standin"), "edge")


@pytest.fixture(scope="session")
def standin_reference(tmp_path_factory) -> StandIn:
    return _build(tmp_path_factory.mktemp("standin"), "reference")


@pytest.fixture(scope="session")
def sample_images():
    paths = sorted(PHOTOS.glob("*.jpg"))
    assert paths, "samples/coco holds the sample photos"
    return paths


@pytest.fixture()
def photo(sample_images) -> np.ndarray:
    return cv2.imread(str(sample_images[0]))


@pytest.fixture()
def broken_model_dir(standin_edge, tmp_path) -> Path:
    """A copy of the stand-in whose inference.yml resizes to 96x96 while the program was traced at
    64x64: it loads, then fails in Paddle Inference at run time (a real engine failure, not a mock)."""
    import shutil

    broken = tmp_path / "broken"
    shutil.copytree(standin_edge.inference_dir, broken)
    yml = broken / "inference.yml"
    yml.write_text(yml.read_text().replace("- 64\n  - 64", "- 96\n  - 96"))
    assert "- 96" in yml.read_text()
    return broken
