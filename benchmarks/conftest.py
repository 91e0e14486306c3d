"""Benchmarks run with `make bench` (timed) and, once each untimed, in `make test` (smoke)."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))  # the stand-in network (tests/standin.py)

import export  # noqa: F401  (legacy-program mode before anything imports paddle)

import cv2
import numpy as np
import pytest

PHOTOS = Path(__file__).resolve().parents[1] / "samples" / "coco"


@pytest.fixture(scope="session")
def full_hd_image() -> np.ndarray:
    return cv2.resize(cv2.imread(str(PHOTOS / "000000014439.jpg")), (1920, 1080))


@pytest.fixture(scope="session")
def long_benchmark(request) -> None:
    """Skip benchmarks that run for minutes unless they are timed (`make bench`); `make test` smoke-runs the rest."""
    config = request.config
    if not (config.getoption("benchmark_enable") or not config.getoption("benchmark_disable")):
        pytest.skip("long benchmark: run with `make bench` (pytest benchmarks --benchmark-enable)")
