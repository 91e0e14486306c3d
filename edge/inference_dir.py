"""The inference directory (PaddleDetection's / PaddleX's exported model): its file names and rules.

An inference directory holds `inference.yml` (pre-processing, labels), `inference.pdiparams`
(weights) and a program: the legacy `inference.pdmodel` (what Paddle Lite's opt reads) or the PIR
`inference.json` (what PaddleX 3 writes by default; Paddle Inference runs both).
"""
from __future__ import annotations

from pathlib import Path

from .errors import ModelError

INFERENCE_YML = "inference.yml"
PARAMS_FILE = "inference.pdiparams"
LEGACY_PROGRAM = "inference.pdmodel"
PIR_PROGRAM = "inference.json"
PREFIX = "inference"  # paddle.jit.save / load_inference_model path prefix


def is_inference_dir(path: Path) -> bool:
    return (Path(path) / INFERENCE_YML).is_file()


def find_program(model_dir: Path) -> Path:
    """The program file to run, preferring PIR `inference.json` as PaddleX does."""
    model_dir = Path(model_dir)
    if not model_dir.is_dir():
        raise ModelError(f"model directory {model_dir} does not exist")
    for name in (PIR_PROGRAM, LEGACY_PROGRAM):
        if (model_dir / name).is_file():
            _require_params(model_dir, name)
            return model_dir / name
    raise ModelError(
        f"{model_dir} has neither {LEGACY_PROGRAM} nor {PIR_PROGRAM}; "
        "point model_dir at an exported inference directory (or at a bundle with model.nb)"
    )


def _require_params(model_dir: Path, program: str) -> None:
    if not (model_dir / PARAMS_FILE).is_file():
        raise ModelError(f"{model_dir} has {program} but no {PARAMS_FILE}; copy the whole exported directory")
