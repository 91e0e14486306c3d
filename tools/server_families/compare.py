"""Compare `edge predict --model DIR` and `edge serve` with PaddleX's predictor on the same directory.

Runs in the project's venv:

    python -m tools.server_families.compare --model-dir DIR --paddlex OUT.npz --images IMG... --threshold T \
        [--serve] [--fixture tests/edge/families/<name>.npz]

Reports per image: instance counts, max score difference, max coordinate difference (px) and the
smallest share of equal mask pixels, for our feeds vs PaddleX's, the Python API (what `edge predict`
runs) and, with --serve, a real `edge serve` on loopback. With --fixture, writes the small CI fixture:
PaddleX's raw program outputs (rows above a margin below the threshold) and its results.
"""
from __future__ import annotations

import argparse
import base64
import json
from pathlib import Path
from typing import Dict, List, Sequence

import numpy as np

TOL_SCORE, TOL_PX, TOL_MASK = 1e-4, 1e-2, 0.999


def paddlex_results(record, k: int, threshold: float = 0.0):
    """PaddleX's result for image k, narrowed to `threshold` when it ran with a lower one (its filter
    is per row: `score > t` for boxes, `score >= t` for SOLOv2's rows)."""
    boxes = json.loads(str(record[f"{k}/boxes"]))
    masks = [record[f"{k}/mask{i}"] for i in range(len(boxes))]
    keep = [i for i, b in enumerate(boxes) if (b["score"] >= threshold if "class_id" in b else b["score"] > threshold)]
    return [boxes[i] for i in keep], [masks[i] for i in keep]


def solov2_as_boxes(boxes: List[dict], masks: Sequence[np.ndarray]):
    """PaddleX's SOLOv2 rows (class_id, full masks) in our form: cls_id, tight box, cropped mask."""
    out_boxes, out_masks = [], []
    for b, m in zip(boxes, masks):
        rows, cols = np.flatnonzero(m.any(axis=1)), np.flatnonzero(m.any(axis=0))
        if rows.size == 0:
            continue
        y1, y2, x1, x2 = rows[0], rows[-1] + 1, cols[0], cols[-1] + 1
        out_boxes.append({"cls_id": b["class_id"], "score": b["score"], "coordinate": [x1, y1, x2, y2]})
        out_masks.append(m[y1:y2, x1:x2])
    return out_boxes, out_masks


def compare(ours_boxes: List[dict], ours_masks: Sequence[np.ndarray], ref_boxes: List[dict],
            ref_masks: Sequence[np.ndarray]) -> Dict[str, float]:
    """Instance counts and worst differences, rows paired in order (both sorted as the program emits)."""
    out = {"count": len(ours_boxes), "ref_count": len(ref_boxes), "score": 0.0, "px": 0.0, "mask": 1.0,
           "cls_mismatch": 0, "shape_mismatch": 0}
    for a, b, ma, mb in zip(ours_boxes, ref_boxes, ours_masks, ref_masks):
        out["cls_mismatch"] += int(a["cls_id"] != b["cls_id"])
        out["score"] = max(out["score"], abs(a["score"] - b["score"]))
        if b.get("coordinate"):
            out["px"] = max(out["px"], float(np.max(np.abs(np.subtract(a["coordinate"], b["coordinate"])))))
        if ma.shape != mb.shape:
            out["shape_mismatch"] += 1
            h, w = min(ma.shape[0], mb.shape[0]), min(ma.shape[1], mb.shape[1])
            ma, mb = ma[:h, :w], mb[:h, :w]
        if ma.size:
            out["mask"] = min(out["mask"], float(np.mean((ma != 0) == (mb != 0))))
    return out


def ok(row: Dict[str, float]) -> bool:
    return (row["count"] == row["ref_count"] and row["cls_mismatch"] == 0 and row["shape_mismatch"] == 0
            and row["score"] <= TOL_SCORE and row["px"] <= TOL_PX and row["mask"] >= TOL_MASK)


def serve_results(model_dir: Path, images: Sequence[Path], threshold: float):
    import httpx

    from edge.serve.app import create_app
    from edge.serve.codec import decode_mask
    from edge.serve.limits import ServeLimits
    from edge.serve.runner import BackgroundServer, pipeline_factory

    overrides = {"SubModules": {"InstanceSegmentation": {"model_dir": str(model_dir)}}}
    live = BackgroundServer(create_app(pipeline_factory("instance_segmentation", overrides), ServeLimits())).start()
    try:
        results = []
        for image in images:
            body = {"image": base64.b64encode(image.read_bytes()).decode(), "threshold": threshold, "visualize": False}
            response = httpx.post(f"{live.url}/instance-segmentation", json=body, timeout=600)
            response.raise_for_status()
            instances = response.json()["result"]["instances"]
            boxes = [{"cls_id": i["categoryId"], "score": i["score"], "coordinate": i.get("bbox")} for i in instances]
            masks = [decode_mask(i["mask"]["rleResult"], i["mask"]["size"]) for i in instances]
            results.append((boxes, masks))
        return results
    finally:
        live.stop()


def _normalize_constants(spec):
    for op in spec.preprocess:
        if op.get("type") == "NormalizeImage":
            scale = 1 / 255.0 if op.get("is_scale", True) else 1.0
            std, mean = np.asarray(op.get("std", [1.0] * 3), np.float64), np.asarray(op.get("mean", [0.0] * 3), np.float64)
            return scale / std, -mean / std
    return np.ones(3), np.zeros(3)


def _levels(chw: np.ndarray, alpha, beta) -> np.ndarray:
    """An image tensor as 8-bit levels HWC: round((x - beta) / alpha), clipped (the test does the same to ours)."""
    x = (chw.transpose(1, 2, 0).astype(np.float64) - beta) / alpha
    return np.clip(np.rint(x), 0, 255).astype(np.uint8)


def write_fixture(path: Path, record, model_dir: Path, images: Sequence[Path], threshold: float, margin: float) -> None:
    """PaddleX's raw outputs (rows scoring above threshold - margin, masks bit-packed) and results."""
    import cv2

    from edge.models import open_model_dir

    spec = open_model_dir(model_dir).spec
    data = {"threshold": np.asarray(threshold), "inference_yml": np.asarray((model_dir / "inference.yml").read_text()),
            "images": np.asarray(json.dumps([p.name for p in images]))}
    alpha, beta = _normalize_constants(spec)
    for k, image in enumerate(images):
        data[f"{k}/im_shape"], data[f"{k}/scale_factor"] = record[f"{k}/feed0"], record[f"{k}/feed2"]
        if k == 0 and path.name.startswith("legacy"):  # PaddleX's image tensor (once per family), back in 8-bit levels (a PNG is ~10x smaller than the floats)
            data["0/image_levels_png"] = np.frombuffer(cv2.imencode(".png", _levels(record["0/feed1"][0], alpha, beta))[1].tobytes(), np.uint8)
        outs = sorted(key for key in record.files if key.startswith(f"{k}/out"))
        raw = [record[key] for key in outs]
        if len(raw) == 4:  # SOLOv2: bbox_num, cate_label, cate_score, segm
            keep = np.flatnonzero(raw[2] >= threshold - margin)
            raw = [np.asarray(len(keep), raw[0].dtype), raw[1][keep], raw[2][keep], raw[3][keep]]
            mask_index = 3
        else:  # bbox [N, 6], bbox_num, mask [N, H, W]
            keep = np.flatnonzero(raw[0][:, 1] > threshold - margin)
            raw = [raw[0][keep], np.asarray([len(keep)], raw[1].dtype), raw[2][keep]]
            mask_index = 2
        for i, array in enumerate(raw):
            if i == mask_index:
                data[f"{k}/out{i}_bits"] = np.packbits(array.astype(bool), axis=-1)
                data[f"{k}/out{i}_shape"] = np.asarray(array.shape)
                data[f"{k}/out{i}_dtype"] = np.asarray(str(array.dtype))
            else:
                data[f"{k}/out{i}"] = array
        boxes, masks = paddlex_results(record, k, threshold)
        data[f"{k}/boxes"] = np.asarray(json.dumps(boxes))
        for i, m in enumerate(masks):
            data[f"{k}/mask{i}_bits"] = np.packbits(m.astype(bool), axis=-1)
            data[f"{k}/mask{i}_shape"] = np.asarray(m.shape)
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(path, **data)
    print(f"fixture {path}: {path.stat().st_size} bytes")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model-dir", type=Path, required=True)
    parser.add_argument("--paddlex", type=Path, required=True, help="run_paddlex.py's output")
    parser.add_argument("--images", type=Path, nargs="+", required=True)
    parser.add_argument("--threshold", type=float, required=True)
    parser.add_argument("--serve", action="store_true")
    parser.add_argument("--fixture", type=Path)
    parser.add_argument("--margin", type=float, default=0.02)
    parser.add_argument("--fixture-threshold", type=float, help="a higher threshold for the fixture (fewer rows)")
    args = parser.parse_args()

    import cv2

    from edge import create_pipeline
    from edge.models import open_model_dir
    from edge.preprocess import Preprocessor

    record = np.load(args.paddlex)
    model = open_model_dir(args.model_dir)
    pre = Preprocessor(model.spec, portable_resize=False)
    pipeline = create_pipeline(config={"SubModules": {"InstanceSegmentation": {"model_dir": str(args.model_dir)}}})
    served = serve_results(args.model_dir, args.images, args.threshold) if args.serve else None
    all_ok = True
    for k, image in enumerate(args.images):
        feeds = pre(cv2.imread(str(image)))
        ref_feeds = [record[f"{k}/feed{i}"] for i in range(3)]
        names = sorted(feeds)  # PaddleX feeds inputs sorted by name
        feed_diff = max(float(np.max(np.abs(feeds[n] - r))) if feeds[n].shape == r.shape else float("inf")
                        for n, r in zip(names, ref_feeds))
        ref_boxes, ref_masks = paddlex_results(record, k, args.threshold)
        if ref_boxes and "class_id" in ref_boxes[0]:
            ref_boxes, ref_masks = solov2_as_boxes(ref_boxes, ref_masks)
        (res,) = list(pipeline.predict(str(image), threshold=args.threshold))
        rows = {"predict": compare(res["boxes"], res["masks"], ref_boxes, ref_masks)}
        if served is not None:
            rows["serve"] = compare(*served[k], ref_boxes, ref_masks)
        for how, row in rows.items():
            all_ok &= ok(row)
            print(f"{image.name} {how}: feeds {feed_diff:.2e} {'OK ' if ok(row) else 'BAD'} {row}")
    if args.fixture:
        write_fixture(args.fixture, record, args.model_dir, args.images, args.fixture_threshold or args.threshold, args.margin)
    raise SystemExit(0 if all_ok else 1)


if __name__ == "__main__":
    main()
