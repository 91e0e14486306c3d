"""The project's own demo model: the offline default of `edge export`, `edge predict` and `make demo`.

A narrowed PP-YOLOE_seg (export/networks/ppyoloe_seg_demo.py) trained on the synthetic shapes of
export/dataset/synthetic.py by export/train/train_demo.py; its weights and facts are shipped in
export/demo_model/ (model.pdparams + model.json). Calibration and sample images are generated
from the same seeded generator, so nothing needs to be downloaded.
"""
from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any, Dict

from edge import cache
from edge.errors import ExportError
from edge.zoo import DEMO_MODEL

from .source import Source

logger = logging.getLogger(__name__)

DEMO_DIR = Path(__file__).with_name("demo_model")
WEIGHTS_FILE, INFO_FILE = "model.pdparams", "model.json"
CALIB_SEED = 2024  # a stream of the generator that training never saw
EVAL_IMAGES = 100  # the first images of the training's held-out val split (same seed, same images)


def demo_info() -> Dict[str, Any]:
    path = DEMO_DIR / INFO_FILE
    if not path.is_file() or not (DEMO_DIR / WEIGHTS_FILE).is_file():
        raise ExportError(
            f"the demo model is missing from {DEMO_DIR} (model.pdparams + model.json); it is part of the repository — "
            "restore it, or retrain it: python -m export.train.train_demo --config export/train/configs/demo_ppyoloe_seg.yml"
        )
    return json.loads(path.read_text(encoding="utf-8"))


def synthetic_images(out_dir: Path, count: int, split: str = "calib", seed: int = CALIB_SEED) -> Path:
    """Generate (once) `count` synthetic images like the demo's training data; returns the image folder."""
    from .dataset.synthetic import generate

    info = demo_info()
    size = tuple(info["config"].get("image_size", (320, 320)))
    folder = Path(out_dir) / split / "images"
    if not (folder.is_dir() and len(list(folder.glob("*.png"))) == count):
        generate(out_dir, count, seed=seed, image_size=size, split_name=split)  # its annotations list `count` images
    return folder


def demo_source(calib_count: int = 32, eval_count: int = EVAL_IMAGES) -> Source:
    """The demo model, its calibration images and its held-out labelled data (the training's val split)."""
    info = demo_info()
    calib = synthetic_images(cache.cache_dir() / "demo_calibration", calib_count)
    eval_images = synthetic_images(cache.cache_dir() / "demo_val", eval_count, split="val", seed=info["config"]["seed"])
    return Source(DEMO_MODEL, DEMO_MODEL, DEMO_DIR / WEIGHTS_FILE, labels=list(info["labels"]),
                  input_size=tuple(info["arch"]["input_size"]), calib_dir=calib,
                  eval_data=eval_images.parent / "annotations.json")


def export_demo(out_dir: Path, graph: str = "edge") -> Path:
    """Save the shipped demo network with its weights as a legacy inference directory."""
    from .networks.ppyoloe_seg_demo import save_demo_inference_dir

    demo_info()  # a clear error when the shipped files are missing
    return save_demo_inference_dir(DEMO_DIR, out_dir, graph=graph, model_name=DEMO_MODEL)
