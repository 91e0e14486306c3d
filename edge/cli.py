"""`edge`: the command line (PaddleX's `paddlex --pipeline ...` verbs, plus export / serve / eval).

    edge predict --model MODEL_OR_DIR --input img.jpg --threshold 0.5 --save_path ./output --device cpu
    edge --get_pipeline_config instance_segmentation --save_path ./my_path
    edge models
"""
from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path
from typing import Any, Dict, List, Optional

from .errors import EdgeError


def _model_overrides(model: Optional[str], backend: Optional[str], threshold: Optional[float] = None,
                     threads: Optional[int] = None) -> Dict[str, Any]:
    module: Dict[str, Any] = {}
    if model:
        if Path(model).exists():
            module["model_dir"] = model
        else:
            module["model_name"], module["model_dir"] = model, None
    if backend:
        module["backend"] = backend
    if threads:
        module["threads"] = threads
    return {"SubModules": {"InstanceSegmentation": module}} if module else {}


def cmd_predict(args: argparse.Namespace) -> int:
    from .pipeline import create_pipeline

    input_arg: Any = int(args.input) if args.input.isdigit() else args.input  # camera index
    pipeline = create_pipeline(args.pipeline, config=_model_overrides(args.model, args.backend, threads=args.threads),
                               device=args.device)
    count = 0
    for result in pipeline.predict(input_arg, threshold=args.threshold):
        count += 1
        result.print()
        if args.save_path:
            result.save_to_img(args.save_path)
            result.save_to_json(args.save_path)
    logging.getLogger("edge").info("%d result(s), computed by %s", count, pipeline.predictor.name)
    return 0


def cmd_models(args: argparse.Namespace) -> int:
    from .zoo import MODELS

    print(f"{'model':42} {'mask AP':>7} {'size MB':>8}  where it runs")
    for m in MODELS.values():
        print(f"{m.name:42} {m.mask_ap:7.1f} {m.size_mb:8.1f}  {'edge (edge export)' if m.edge else 'server (edge serve)'}")
    return 0


def cmd_get_pipeline_config(args: argparse.Namespace) -> int:
    from .config import PIPELINE_NAME, write_default_config

    if args.get_pipeline_config != PIPELINE_NAME:
        raise EdgeError(f"unknown pipeline {args.get_pipeline_config!r}; this tool provides {PIPELINE_NAME!r}")
    path = write_default_config(args.save_path or ".")
    print(f"pipeline config written to {path}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="edge", description="PaddleX instance segmentation on the edge.")
    parser.add_argument("--get_pipeline_config", metavar="PIPELINE", help="write the pipeline YAML to --save_path")
    parser.add_argument("--save_path", help="with --get_pipeline_config: where to write the YAML")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command")

    p = sub.add_parser("predict", help="run instance segmentation on images, PDFs, a directory, a URL, a video or a camera")
    p.add_argument("--input", required=True, help="image / PDF / directory / URL / video file / camera index")
    p.add_argument("--model", help="a zoo model name, a bundle directory (edge export) or an inference directory")
    p.add_argument("--pipeline", default="instance_segmentation", help="pipeline name or pipeline YAML path")
    p.add_argument("--threshold", type=float, help="score threshold in (0, 1); default: the pipeline's (0.5)")
    p.add_argument("--save_path", help="directory (or file) for the pictures and JSON results")
    p.add_argument("--device", help="cpu (default); gpu:0 etc. are accepted names but need a server")
    p.add_argument("--backend", choices=["auto", "lite", "paddle", "remote"], help="override the config's backend")
    p.add_argument("--threads", type=int, help="CPU threads")
    p.set_defaults(func=cmd_predict)

    m = sub.add_parser("models", help="list the 15 models and where each runs")
    m.set_defaults(func=cmd_models)
    return parser


def main(argv: Optional[List[str]] = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        if args.get_pipeline_config:
            return cmd_get_pipeline_config(args)
        if not getattr(args, "func", None):
            parser.print_help()
            return 2
        return args.func(args)
    except EdgeError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
