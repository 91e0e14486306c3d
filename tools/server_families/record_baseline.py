"""Record the time of whichever `edge` is importable on the server families (the benchmark's fallback reference).

    git worktree add /tmp/edge-before <commit> --detach
    PYTHONPATH=/tmp/edge-before .venv/bin/python tools/server_families/record_baseline.py \
        --families-dir /work/refenv/families/legacy --commit <commit> --out benchmarks/baselines/server_families.json

Same photo, threads, warm-up and median as benchmarks/test_server_families.py. A family the
recorded implementation cannot run is recorded as null with its error.
"""
from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import cv2

ROOT = Path(__file__).resolve().parents[2]
PHOTO = ROOT / "samples" / "coco" / "000000014439.jpg"
THREADS, RUNS = 2, 3
THRESHOLDS = {"Mask-RT-DETR": 0.01}  # as the benchmark; 0.05 otherwise


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--families-dir", type=Path, required=True)
    parser.add_argument("--commit", required=True)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()

    import edge
    from edge.models import open_model_dir
    from edge.predictor import LocalPredictor

    image = cv2.imread(str(PHOTO))
    seconds, errors = {}, {}
    for model_dir in sorted(p for p in args.families_dir.iterdir() if p.is_dir()):
        threshold = THRESHOLDS.get(model_dir.name.rsplit("-", 1)[0], 0.05)
        try:
            predictor = LocalPredictor(open_model_dir(model_dir), threads=THREADS)
            predictor(image, threshold)
            times = []
            for _ in range(RUNS):
                t0 = time.perf_counter()
                predictor(image, threshold)
                times.append(time.perf_counter() - t0)
            seconds[model_dir.name] = statistics.median(times)
        except Exception as err:  # the old implementation's failures are part of the record
            seconds[model_dir.name] = None
            errors[model_dir.name] = str(err).splitlines()[0][:200]
        print(model_dir.name, seconds[model_dir.name], errors.get(model_dir.name, ""))
    record = {"about": f"`edge` at {args.commit} ({Path(edge.__file__).parent}), {args.families_dir.name} exports of "
                       f"tools/server_families, {PHOTO.name}, {THREADS} threads, median of {RUNS} warm runs",
              "seconds": seconds, "errors": errors}
    args.out.write_text(json.dumps(record, indent=2) + "\n")


if __name__ == "__main__":
    main()
