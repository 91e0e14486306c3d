"""Golden vectors shared by the Python runtime's tests and the Android Java core's JUnit tests.

    python -m tools.golden            # rewrites tests/golden/ (about a minute, no network)

For a few sample images and both mask layouts it records what each stage of the runtime sees and
makes, from the x86 FP32 Paddle Lite bundles of the project's demo model that it exports first:
the edge graph (`lowres` masks) and the reference graph (`full` masks).

tests/golden/
    index.json            provenance, and per case: manifest, threshold, Lite's input/output order,
                          and the final results (boxes, labels, scores, RLE masks as the server sends them)
    manifests/*.json      the bundles' manifest.json, as exported
    <case>.npz            image (BGR uint8, as read), the three feeds, the raw outputs bbox and bbox_num,
                          and `mask` for the rows post-processing keeps (`mask_rows` lists them: the
                          other rows are never read, and both test suites fail if one is)
    resize.npz            small images and the runtime's resize of each (interp 0, 1, 2; up, down,
                          exactly x2 down, odd widths), for the Java core's OpenCV resize

Both suites reproduce the feeds from the image and the results from the raw outputs:
tests/tools/test_golden.py (Python) and android_demo/core/src/test (Java).
"""
from __future__ import annotations

import argparse
import json
import platform
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

import cv2
import numpy as np

REPO = Path(__file__).resolve().parents[1]
GOLDEN_DIR = REPO / "tests" / "golden"
SAMPLES = REPO / "samples"
INDEX_FILE = "index.json"
RESIZE_FILE = "resize.npz"
GRAPHS = {"lowres": "edge", "full": "reference"}


@dataclass(frozen=True)
class Case:
    name: str
    layout: str  # "lowres" | "full"
    image: str  # path under samples/
    threshold: float


CASES = (
    Case("synthetic-000004-lowres", "lowres", "synthetic/000004.jpg", 0.5),
    Case("photo-hrnet-lowres", "lowres", "coco/hrnet_demo.jpg", 0.4),
    Case("synthetic-000005-full", "full", "synthetic/000005.jpg", 0.5),
    Case("photo-014439-full", "full", "coco/000000014439.jpg", 0.45),
)

# (source height, width, target height, width, interp): upscale, downscale, exactly x2 down
# (OpenCV's area path for linear), row widths whose last elements take cubic's integer path
RESIZES = (
    (37, 53, 20, 30, 0), (37, 53, 20, 30, 1), (37, 53, 20, 30, 2),
    (21, 13, 64, 45, 0), (21, 13, 64, 45, 1), (21, 13, 64, 45, 2),
    (40, 62, 20, 31, 1), (40, 62, 20, 31, 2),
    (9, 7, 5, 3, 2), (12, 11, 25, 7, 2), (30, 30, 30, 30, 2),
    (101, 77, 192, 192, 2), (5, 200, 3, 66, 1),
)


def export_bundles(work: Path) -> Dict[str, Path]:
    """The demo model's x86 FP32 bundles: {"lowres": edge graph, "full": reference graph}."""
    import export  # noqa: F401  (legacy program mode before paddle is imported)
    from export.demo import demo_source
    from export.exporter import ExportOptions, export_model

    return {layout: export_model(demo_source(), ExportOptions(target="x86", graph=graph, verify=False,
                                                              out_dir=work / graph)).path
            for layout, graph in GRAPHS.items()}


def case_arrays(case: Case, bundle: Path) -> Tuple[Dict[str, np.ndarray], Dict[str, Any]]:
    """Run one case through the runtime's stages: (arrays for the .npz, JSON part of the index)."""
    from edge.backends.lite import LiteBackend
    from edge.bundle import open_bundle
    from edge.postprocess import crop_region, postprocess
    from edge.preprocess import Preprocessor
    from edge.serve.codec import encode_mask

    model = open_bundle(bundle)
    spec = model.spec
    backend = LiteBackend(model.model_path, probe=False)
    if tuple(backend.input_names) != tuple(spec.input_names):
        raise SystemExit(f"{bundle}: Paddle Lite takes inputs {backend.input_names}, the manifest lists {spec.input_names};"
                         " the Android app feeds by position in manifest order")
    image = cv2.imread(str(SAMPLES / case.image))
    feeds = Preprocessor(spec)(image)
    bbox, bbox_num, mask = backend.run(feeds)[:3]
    scale = feeds[spec.input_names[2]][0]
    detections = postprocess(bbox, bbox_num, mask, image.shape[:2], scale, spec, case.threshold)
    count = int(bbox_num[0])
    rows = bbox[:count]
    kept = np.flatnonzero((rows[:, 1] > case.threshold) & (rows[:, 0] > -1)).astype(np.int32)
    arrays = {
        "image_bgr": image,
        "im_shape": feeds[spec.input_names[0]],
        "image": feeds[spec.input_names[1]],
        "scale_factor": feeds[spec.input_names[2]],
        "bbox": bbox,
        "bbox_num": bbox_num,
        "mask_rows": kept,
        "mask": mask[kept],
    }
    results = [
        {"cls_id": box["cls_id"], "label": box["label"], "score": box["score"], "coordinate": box["coordinate"],
         "region": list(crop_region(box["coordinate"])), "mask": encode_mask(crop)}
        for box, crop in zip(detections.boxes, detections.masks)
    ]
    info = {
        "name": case.name, "layout": case.layout, "source_image": f"samples/{case.image}", "threshold": case.threshold,
        "arrays": f"{case.name}.npz", "lite_inputs": backend.input_names, "lite_outputs": backend.output_names,
        "mask_shape": list(mask.shape), "mask_dtype": str(mask.dtype), "results": results,
    }
    return arrays, info


def resize_arrays(seed: int = 14) -> Tuple[Dict[str, np.ndarray], List[Dict[str, Any]]]:
    """Smooth and noisy random images and the runtime's resize of each (RGB, as the model sees them)."""
    from edge.preprocess import INTERP_CODES, resize_image

    rng = np.random.default_rng(seed)
    arrays: Dict[str, np.ndarray] = {}
    index = []
    for i, (sh, sw, dh, dw, interp) in enumerate(RESIZES):
        src = rng.integers(0, 256, (sh, sw, 3), dtype=np.uint8)
        if i % 2:
            src = cv2.GaussianBlur(src, (5, 5), 2)
        arrays[f"src_{i}"] = src
        arrays[f"dst_{i}"] = resize_image(src, dw, dh, INTERP_CODES[interp])
        index.append({"src": f"src_{i}", "dst": f"dst_{i}", "interp": interp, "size": [dh, dw]})
    return arrays, index


def versions() -> Dict[str, Optional[str]]:
    from export.toolchain import toolchain_versions

    return {**toolchain_versions(), "opencv": cv2.__version__, "numpy": np.__version__, "machine": platform.machine()}


def write_golden(out: Path, work: Path, cases: Sequence[Case] = CASES) -> Path:
    bundles = export_bundles(work)
    staging = Path(tempfile.mkdtemp(prefix=".golden-", dir=out.parent))
    try:
        (staging / "manifests").mkdir()
        manifests = {}
        for layout, bundle in bundles.items():
            name = f"demo-{layout}.json"
            shutil.copyfile(bundle / "manifest.json", staging / "manifests" / name)
            manifests[layout] = f"manifests/{name}"
        entries = []
        for case in cases:
            arrays, info = case_arrays(case, bundles[case.layout])
            np.savez_compressed(staging / f"{case.name}.npz", **arrays)
            entries.append({**info, "manifest": manifests[case.layout]})
        resize, resize_index = resize_arrays()
        np.savez_compressed(staging / RESIZE_FILE, **resize)
        index = {
            "generator": "python -m tools.golden",
            "models": "the demo model (export/demo_model), x86 FP32 Paddle Lite bundles: edge graph = lowres, reference graph = full",
            "versions": versions(),
            "cases": entries,
            "resize": {"arrays": RESIZE_FILE, "cases": resize_index},
        }
        (staging / INDEX_FILE).write_text(json.dumps(index, indent=1) + "\n", encoding="utf-8")
        if out.exists():
            shutil.rmtree(out)
        staging.chmod(0o755)
        staging.rename(out)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return out


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.golden", description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=GOLDEN_DIR, help="where to write (default: tests/golden)")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="golden-bundles-") as work:
        out = write_golden(args.out.resolve(), Path(work))
    total = sum(p.stat().st_size for p in out.rglob("*") if p.is_file())
    print(f"wrote {out} ({total / 1e6:.2f} MB)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
