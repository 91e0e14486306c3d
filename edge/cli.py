"""`edge`: the command line (PaddleX's `paddlex --pipeline ...` verbs, plus export / serve / eval).

    edge predict --model MODEL_OR_DIR --input img.jpg --threshold 0.5 --save_path ./output --device cpu
    edge --get_pipeline_config instance_segmentation --save_path ./my_path
    edge models
    edge serve --model-dir DIR --host 127.0.0.1 --port 8080
    edge bundle edge_models/PP-YOLOE_seg-demo-arm-int8 --android android_demo
"""
from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path
from typing import Any, Dict, List, Optional

from .errors import EdgeError
from .serve.limits import MiB, ServeLimits


def _model_overrides(model: Optional[str], backend: Optional[str], threads: Optional[int] = None,
                     server_url: Optional[str] = None, fallback: Optional[str] = None) -> Dict[str, Any]:
    """Pipeline-config overrides from CLI options (only those given)."""
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
    overrides: Dict[str, Any] = {"SubModules": {"InstanceSegmentation": module}} if module else {}
    serving = {k: v for k, v in (("url", server_url), ("fallback", fallback)) if v}
    if serving:
        overrides["Serving"] = serving
    return overrides


def cmd_predict(args: argparse.Namespace) -> int:
    from .pipeline import create_pipeline

    input_arg: Any = int(args.input) if args.input.isdigit() else args.input  # camera index
    overrides = _model_overrides(args.model, args.backend, args.threads, args.server_url, args.fallback)
    pipeline = create_pipeline(args.pipeline, config=overrides, device=args.device)
    count = 0
    for result in pipeline.predict(input_arg, threshold=args.threshold):
        count += 1
        result.print()
        if args.save_path:
            result.save_to_img(args.save_path)
            result.save_to_json(args.save_path)
    logging.getLogger("edge").info("%d result(s), computed by %s", count, pipeline.predictor.name)
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    import export  # noqa: F401  (legacy program mode before paddle is imported)
    from export.exporter import ExportOptions
    from export.source import resolve_source

    source = resolve_source(args.model, args.model_dir, args.weights, args.num_classes, args.labels,
                            tuple(args.input_size) if args.input_size else None, download=not args.offline)
    options = ExportOptions(target=args.target, graph=args.graph, int8=args.int8, calib_dir=args.calib,
                            calib_count=args.calib_count, algo=args.algo, fp16=args.fp16, weight_only=args.weight_only,
                            out_dir=Path(args.out), verify=not args.no_verify, eval_data=args.eval_data)
    export_with_report(source, options)
    return 0


def export_with_report(source, options):
    """Run the export chain, printing each step's time and the final report."""
    from export.exporter import export_model

    print(f"exporting {source.model_name} for {options.target}" + (" (INT8)" if options.int8 else ""), flush=True)
    result = export_model(source, options, on_step=lambda name, sec: print(f"  {name:<9} {sec:7.1f} s", flush=True))
    print(export_report(result))
    return result


def export_report(result) -> str:
    """The short report printed at the end of `edge export`, with the next commands to run."""
    m = result.manifest
    lines = [f"\nbundle: {result.path}"]
    if "sha256" in m:
        size = (result.path / m["model_file"]).stat().st_size / 1e6
        lines.append(f"  {m['model_file']}: {size:.1f} MB, {m['precision']}, target {m['target']}, sha256 {m['sha256'][:12]}")
    for name, check in (m.get("verification") or {}).items():
        keys = ("matched", "reference_instances", "max_box_diff_px", "min_mask_agreement", "paddle_mask_ap",
                "lite_mask_ap", "fp32_mask_ap", "int8_mask_ap", "mask_ap_drop")
        lines.append(f"  verify {name}: " + ", ".join(f"{k}={check[k]:.4g}" if isinstance(check[k], float) else f"{k}={check[k]}"
                                                  for k in keys if k in check))
    lines += ["next:", f"  edge predict --model {result.path} --input <image|dir|video> --save_path ./output"]
    if m.get("target") == "arm":
        lines.append(f"  copy {result.path} to the board and run the same command there (Paddle Lite ARM build)")
    return "\n".join(lines)


def cmd_bundle(args: argparse.Namespace) -> int:
    from .android import install_bundle, install_report

    installed = install_bundle(Path(args.bundle), Path(args.android))
    print(install_report(installed, Path(args.android)))
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    from .serve.runner import pipeline_factory, serve

    if args.model and args.model_dir:
        raise EdgeError("pass either --model or --model-dir, not both")
    overrides = _model_overrides(args.model or args.model_dir, args.backend, args.threads)
    if args.threshold is not None:
        overrides.setdefault("SubModules", {}).setdefault("InstanceSegmentation", {})["threshold"] = args.threshold
    limits = ServeLimits(
        max_body_bytes=int(args.max_body_mb * MiB), max_pixels=args.max_pixels, url_timeout=args.url_timeout,
        url_max_bytes=int(args.url_max_mb * MiB), allow_private_urls=args.allow_private_urls,
        workers=args.workers, max_queue=args.max_queue, graceful_timeout=args.graceful_timeout,
    )
    serve(pipeline_factory(args.pipeline, overrides), host=args.host, port=args.port, limits=limits,
          visualize=not args.no_visualize, log_level="debug" if args.verbose else "info")
    return 0


SAMPLES_DIR = Path(__file__).resolve().parents[1] / "samples"


def cmd_demo(args: argparse.Namespace) -> int:
    """The main job on the embedded default, offline: export the demo model, predict on the samples."""
    import export  # noqa: F401  (legacy program mode before paddle is imported)
    from export.demo import demo_source
    from export.exporter import ExportOptions

    from .models import host_target
    from .pipeline import create_pipeline

    source = demo_source()
    plans = [ExportOptions(target=host_target(), out_dir=Path(args.out))]
    if not args.quick:  # the deliverable for boards
        plans.append(ExportOptions(target="arm", int8=True, out_dir=Path(args.out)))
    bundles = [export_with_report(source, options).path for options in plans]
    inputs = sorted(p for p in (SAMPLES_DIR / "synthetic").glob("*.jpg"))
    if not inputs:
        raise EdgeError(f"no sample images in {SAMPLES_DIR / 'synthetic'}")
    pipeline = create_pipeline(config={"SubModules": {"InstanceSegmentation": {"model_dir": str(bundles[0])}}})
    for result in pipeline.predict([str(p) for p in inputs]):
        result.print()
        result.save_to_img(args.save_path)
        result.save_to_json(args.save_path)
    print(f"\n{len(inputs)} sample images segmented with {bundles[0]} ({pipeline.predictor.name}); "
          f"pictures and JSON in {args.save_path}")
    return 0


def cmd_eval(args: argparse.Namespace) -> int:
    import json

    from .evaluate import evaluate_predictor
    from .pipeline import create_pipeline

    pipeline = create_pipeline(config=_model_overrides(args.model, args.backend, args.threads))
    report = evaluate_predictor(pipeline.predictor, args.data, args.images, threshold=args.threshold)
    print(f"model: {args.model or 'default'} ({pipeline.predictor.name}), {report['num_images']} images")
    print(f"mask AP {report['segm']['AP']:.4f}  AP50 {report['segm']['AP50']:.4f}  AP75 {report['segm']['AP75']:.4f}")
    print(f"box  AP {report['bbox']['AP']:.4f}  AP50 {report['bbox']['AP50']:.4f}  AP75 {report['bbox']['AP75']:.4f}")
    for name, ap in report["segm"]["per_class"].items():
        print(f"  {name:<20} mask AP {'n/a' if ap is None else f'{ap:.4f}'}")
    print("latency (median ms): " + ", ".join(f"{k} {v:.2f}" for k, v in report["latency_ms"].items()))
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2))
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
    p.add_argument("--server-url", help="the `edge serve` endpoint to fall back to (sets Serving.url)")
    p.add_argument("--fallback", choices=["never", "server_only", "on_error"], help="when to use the server")
    p.set_defaults(func=cmd_predict)

    e = sub.add_parser("export", help="export an edge model to a Paddle Lite bundle (default: the offline demo model)")
    src = e.add_argument_group("source (default: the project's demo model, offline)")
    src.add_argument("--model", help="PP-YOLOE_seg-S or Mask-RT-DETR-S (official weights, downloaded), or PP-YOLOE_seg-demo")
    src.add_argument("--model-dir", type=Path, help="a local inference directory (legacy or PIR), official or fine-tuned")
    src.add_argument("--weights", type=Path, help="a .pdparams file (fine-tuned weights) for the --model architecture")
    src.add_argument("--num-classes", type=int, help="classes of --weights (default 80)")
    src.add_argument("--labels", type=Path, help="label file, one class name per line")
    src.add_argument("--input-size", type=int, nargs=2, metavar=("H", "W"), help="model input size (default 640 640)")
    src.add_argument("--offline", action="store_true", help="never download")
    e.add_argument("--graph", choices=["edge", "reference"], default="edge", help="graph of rebuilt programs")
    e.add_argument("--target", choices=["arm", "x86", "opencl", "paddle"], default="arm",
                   help="arm (default), x86, opencl; paddle stops before opt (Lite-ready legacy directory)")
    q = e.add_argument_group("precision")
    q.add_argument("--int8", action="store_true", help="calibrated post-training INT8 (real int8 kernels on ARM)")
    q.add_argument("--calib", type=Path, help="calibration image directory (default: shipped images)")
    q.add_argument("--calib-count", type=int, default=32, help="calibration images used (default 32)")
    q.add_argument("--algo", default="avg", choices=["avg", "KL", "hist", "mse", "abs_max"],
                   help="calibration algorithm (default avg; see export/quantize.py)")
    q.add_argument("--fp16", action="store_true", help="FP16 kernels (ARMv8.2 CPUs)")
    q.add_argument("--weight-only", choices=["int8", "int16"], help="weight-only quantization: smaller file, FP32 compute")
    e.add_argument("--out", default="edge_models", help="output root (default ./edge_models)")
    e.add_argument("--no-verify", action="store_true", help="skip the verification stage")
    e.add_argument("--eval-data", type=Path, help="COCO annotation json (images beside it) for mask AP in the INT8 check")
    e.set_defaults(func=cmd_export)

    b = sub.add_parser("bundle", help="put a bundle into the Android demo app (its assets), selected as the app's model")
    b.add_argument("bundle", help="an ARM bundle directory made by `edge export` (model.nb + manifest.json)")
    b.add_argument("--android", required=True, metavar="DIR", help="the Android demo project (android_demo/)")
    b.set_defaults(func=cmd_bundle)

    limits = ServeLimits()  # the defaults, shown by --help
    s = sub.add_parser("serve", help="serve the pipeline over HTTP with PaddleX's API (POST /instance-segmentation)")
    s.add_argument("--pipeline", default="instance_segmentation", help="pipeline name or pipeline YAML path")
    s.add_argument("--model", help="a zoo model name (any of the 15), a bundle directory or an inference directory")
    s.add_argument("--model-dir", help="a local inference directory (or bundle) to serve")
    s.add_argument("--backend", choices=["auto", "lite", "paddle"], help="override the config's backend")
    s.add_argument("--threads", type=int, help="CPU threads per worker")
    s.add_argument("--threshold", type=float, help="default score threshold in (0, 1) when a request sends none")
    s.add_argument("--host", default="0.0.0.0", help="bind address (default 0.0.0.0 = every interface, as PaddleX; "
                   "use 127.0.0.1 for this machine only)")
    s.add_argument("--port", type=int, default=8080, help="port (default 8080)")
    s.add_argument("--workers", type=int, default=1, help="inference threads, each with its own copy of the model")
    s.add_argument("--max-queue", type=int, default=limits.max_queue,
                   help="requests that may wait beyond --workers; more get 503 (default %(default)s)")
    s.add_argument("--max-body-mb", type=float, default=limits.max_body_bytes / MiB,
                   help="largest request body in MiB, larger: 413 (default %(default)g)")
    s.add_argument("--max-pixels", type=int, default=limits.max_pixels,
                   help="largest image in pixels, larger: 400 (default %(default)s)")
    s.add_argument("--url-timeout", type=float, default=limits.url_timeout,
                   help="seconds to fetch an image given as a URL (default %(default)g)")
    s.add_argument("--url-max-mb", type=float, default=limits.url_max_bytes / MiB,
                   help="largest image download in MiB (default %(default)g)")
    s.add_argument("--allow-private-urls", action="store_true",
                   help="fetch URLs on loopback / private networks too (refused by default: request forgery)")
    s.add_argument("--no-visualize", action="store_true", help="leave result.image out unless a request asks for it")
    s.add_argument("--graceful-timeout", type=float, default=limits.graceful_timeout,
                   help="seconds shutdown waits for requests in flight (default %(default)g)")
    s.set_defaults(func=cmd_serve)

    d = sub.add_parser("demo", help="offline: export the demo model (host + ARM INT8) and segment the sample images")
    d.add_argument("--save_path", default="./output", help="where pictures and JSON go (default ./output)")
    d.add_argument("--out", default="edge_models", help="where bundles go (default ./edge_models)")
    d.add_argument("--quick", action="store_true", help="host bundle only, no ARM INT8 export")
    d.set_defaults(func=cmd_demo)

    v = sub.add_parser("eval", help="mask AP and box AP (pycocotools) of a model on a COCO-format data set")
    v.add_argument("--model", help="bundle, inference directory or model name (default: the demo model)")
    v.add_argument("--data", required=True, type=Path, help="COCO annotations json (images in images/ beside it)")
    v.add_argument("--images", type=Path, help="image folder, if not images/ beside the json")
    v.add_argument("--threshold", type=float, default=0.05, help="score threshold for AP (default 0.05)")
    v.add_argument("--backend", choices=["auto", "lite", "paddle", "remote"])
    v.add_argument("--threads", type=int)
    v.add_argument("--json", help="also write the full report here")
    v.set_defaults(func=cmd_eval)

    m = sub.add_parser("models", help="list the 15 models and where each runs")
    m.set_defaults(func=cmd_models)
    return parser


def main(argv: Optional[List[str]] = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
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
