"""Run PaddleX 3.0.0's own instance-segmentation predictor on an inference directory; save what it gives.

Runs in PaddleX's venv (NOT the project's): see tools/server_families/README.md.

    python run_paddlex.py --model-dir DIR --images IMG... --threshold T --out OUT.npz [--threads 2] [--time N]

Saves, per image, the tensors PaddleX fed to the program, the program's raw outputs and PaddleX's
final result (boxes and box-cropped masks, or SOLOv2's label/score rows with full masks), so that
`compare.py` and the project's tests can check our runtime against them. With `--time N`, also the
median of N warm whole-predict timings. With `--interleave`, nothing is recorded: after one warm-up
predict on the first image it prints `ready`, then times one predict per `run` line read from stdin
and prints its seconds (the benchmark alternates these with its own runs, so both see the same load).
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import numpy as np


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model-dir", type=Path, required=True)
    parser.add_argument("--images", type=Path, nargs="+", required=True)
    parser.add_argument("--threshold", type=float, required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--run-mode", default=None, help="PaddleX run_mode (default: PaddleX's own, 'paddle' on CPU)")
    parser.add_argument("--time", type=int, default=0, help="warm timing runs on the first image")
    parser.add_argument("--interleave", action="store_true", help="time one predict per 'run' line on stdin")
    args = parser.parse_args()

    import yaml
    from paddlex import create_model
    from paddlex.inference import PaddlePredictorOption

    name = yaml.safe_load((args.model_dir / "inference.yml").read_text())["Global"]["model_name"]
    option = PaddlePredictorOption(model_name=name, device_type="cpu", cpu_threads=args.threads)
    if args.run_mode:
        option.run_mode = args.run_mode
    model = create_model(model_name=name, model_dir=str(args.model_dir), device="cpu", pp_option=option)
    predictor = getattr(model, "_predictor", model)  # create_model wraps the predictor
    if args.interleave:
        img = str(args.images[0])
        list(model.predict(img, threshold=args.threshold))
        print("ready", flush=True)
        for line in sys.stdin:
            if line.strip() != "run":
                break
            t0 = time.perf_counter()
            list(model.predict(img, threshold=args.threshold))
            print(f"{time.perf_counter() - t0:.6f}", flush=True)
        return
    captured = []
    infer = predictor.infer

    def recording_infer(inputs):
        outputs = infer(inputs)
        captured.append(([np.array(x) for x in inputs], [np.array(y) for y in outputs]))
        return outputs

    predictor.infer = recording_infer
    record = {}
    for k, image in enumerate(args.images):
        captured.clear()
        (res,) = list(model.predict(str(image), threshold=args.threshold))
        (inputs, outputs), = captured
        for i, x in enumerate(inputs):
            record[f"{k}/feed{i}"] = x
        for i, y in enumerate(outputs):
            record[f"{k}/out{i}"] = y
        boxes = res["boxes"]
        record[f"{k}/boxes"] = json.dumps([{**b, "score": float(b["score"]),
                                            "coordinate": [float(c) for c in b.get("coordinate", [])]} for b in boxes])
        for i, m in enumerate(res["masks"]):
            record[f"{k}/mask{i}"] = np.asarray(m).astype(np.uint8)
        print(f"{image.name}: {len(boxes)} instances")
    if args.time:
        predictor.infer = infer
        img = str(args.images[0])
        list(model.predict(img, threshold=args.threshold))
        times = []
        for _ in range(args.time):
            t0 = time.perf_counter()
            list(model.predict(img, threshold=args.threshold))
            times.append(time.perf_counter() - t0)
        record["time_s"] = np.asarray(statistics.median(times))
        print(f"paddlex median {statistics.median(times):.3f}s")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(args.out, **record)


if __name__ == "__main__":
    main()
