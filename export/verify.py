"""The verify stage: does the exported model still give the same answers?

- FP32 parity: the x86 `.nb` run by Paddle Lite vs the legacy program run by Paddle Inference,
  both through the runtime (same pre/post-processing), on the calibration images.
- INT8 agreement: the quantized program vs the FP32 program, both in Paddle Inference
  (simulated quantization: the x86 int8 `.nb` of Lite 2.13 returns garbage, docs/TOOLCHAIN.md), and
  mask AP of both when labelled data is given.
Instances are paired greedily by class and box IoU, so a re-ordering is not a disagreement.
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Dict, List, Optional, Sequence

import cv2
import numpy as np

from edge.errors import InputError
from edge.postprocess import Detections

logger = logging.getLogger(__name__)


def box_iou(a: Sequence[float], b: Sequence[float]) -> float:
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def pair_instances(a: Detections, b: Detections, min_iou: float = 0.5) -> List[tuple]:
    """Greedy pairs (i, j) of same-class instances, highest IoU first."""
    candidates = []
    for i, ba in enumerate(a.boxes):
        for j, bb in enumerate(b.boxes):
            if ba["cls_id"] == bb["cls_id"]:
                iou = box_iou(ba["coordinate"], bb["coordinate"])
                if iou >= min_iou:
                    candidates.append((iou, i, j))
    used_a, used_b, pairs = set(), set(), []
    for _, i, j in sorted(candidates, reverse=True):
        if i not in used_a and j not in used_b:
            used_a.add(i)
            used_b.add(j)
            pairs.append((i, j))
    return pairs


def mask_agreement(ma: np.ndarray, ba: dict, mb: np.ndarray, bb: dict) -> float:
    """Share of equal pixels over the union of both boxes (masks are box-cropped)."""
    from edge.evaluate import paste_mask

    x1 = round(min(ba["coordinate"][0], bb["coordinate"][0]))
    y1 = round(min(ba["coordinate"][1], bb["coordinate"][1]))
    x2 = round(max(ba["coordinate"][2], bb["coordinate"][2]))
    y2 = round(max(ba["coordinate"][3], bb["coordinate"][3]))
    a, b = (paste_mask(m, box["coordinate"], (y2, x2))[y1:, x1:] for m, box in ((ma, ba), (mb, bb)))
    return float((a == b).mean()) if a.size else 1.0


def compare(reference: Sequence[Detections], candidate: Sequence[Detections]) -> Dict[str, float]:
    """Agreement of `candidate` with `reference`, image by image."""
    ref_count = cand_count = matched = 0
    box_err = score_err = 0.0
    agreements: List[float] = []
    for ra, ca in zip(reference, candidate):
        ref_count += len(ra.boxes)
        cand_count += len(ca.boxes)
        for i, j in pair_instances(ra, ca):
            matched += 1
            box_err = max(box_err, float(np.max(np.abs(np.subtract(ra.boxes[i]["coordinate"], ca.boxes[j]["coordinate"])))))
            score_err = max(score_err, abs(ra.boxes[i]["score"] - ca.boxes[j]["score"]))
            agreements.append(mask_agreement(ra.masks[i], ra.boxes[i], ca.masks[j], ca.boxes[j]))
    return {
        "images": len(reference),
        "reference_instances": ref_count,
        "candidate_instances": cand_count,
        "matched": matched,
        "recall": matched / ref_count if ref_count else 1.0,
        "precision": matched / cand_count if cand_count else 1.0,
        "max_box_diff_px": box_err,
        "max_score_diff": score_err,
        "min_mask_agreement": min(agreements) if agreements else 1.0,
        "mean_mask_agreement": float(np.mean(agreements)) if agreements else 1.0,
    }


def run_predictor(predictor, images: Sequence[Path], threshold: float) -> List[Detections]:
    from edge.progress import bar

    out = []
    for path in bar(images, desc=f"verify ({getattr(predictor, 'name', 'model')})"):
        image = cv2.imread(str(path))
        if image is None:
            raise InputError(path, "OpenCV cannot decode this verification image; remove it from the folder")
        out.append(predictor(image, threshold))
    return out


def agreement(reference, candidate, images: Sequence[Path], threshold: float, eval_data: Optional[Path],
               names: tuple) -> Dict[str, object]:
    """Instance agreement of two predictors, plus each one's mask AP on labelled data when given."""
    result: Dict[str, object] = dict(compare(run_predictor(reference, images, threshold),
                                             run_predictor(candidate, images, threshold)))
    result["threshold"] = threshold
    if eval_data is not None:
        from edge.evaluate import evaluate_predictor

        ref_ap = evaluate_predictor(reference, eval_data)["segm"]["AP"]
        cand_ap = evaluate_predictor(candidate, eval_data)["segm"]["AP"]
        result.update({f"{names[0]}_mask_ap": ref_ap, f"{names[1]}_mask_ap": cand_ap, "mask_ap_drop": ref_ap - cand_ap,
                       "eval_data": str(eval_data)})
    return result


def verify_fp32(program_dir: Path, x86_nb_bundle: Path, images: Sequence[Path], threshold: float = 0.3,
                eval_data: Optional[Path] = None) -> Dict[str, object]:
    """x86 Lite bundle vs Paddle Inference on the legacy program."""
    from edge.models import open_model_dir
    from edge.predictor import LocalPredictor

    paddle = LocalPredictor(open_model_dir(program_dir), "paddle", as_paddlex=False)
    lite = LocalPredictor(open_model_dir(x86_nb_bundle), "lite")
    result = agreement(paddle, lite, images, threshold, eval_data, ("paddle", "lite"))
    logger.info("FP32 parity (Lite x86 vs Paddle Inference): %s", result)
    return result


def verify_int8(fp32_dir: Path, int8_dir: Path, images: Sequence[Path], threshold: float = 0.3,
                eval_data: Optional[Path] = None) -> Dict[str, object]:
    """The quantized program vs the FP32 program (both in Paddle Inference), plus mask AP if labelled."""
    from edge.models import open_model_dir
    from edge.predictor import LocalPredictor

    fp32 = LocalPredictor(open_model_dir(fp32_dir), "paddle", as_paddlex=False)
    int8 = LocalPredictor(open_model_dir(int8_dir), "paddle", as_paddlex=False)
    result = agreement(fp32, int8, images, threshold, eval_data, ("fp32", "int8"))
    logger.info("INT8 agreement (quantized vs FP32 program): %s", result)
    return result
