"""`edge`: the command line (PaddleX's `paddlex --pipeline ...` verbs, plus serve / eval).

    edge predict --model MODEL_OR_DIR --input img.jpg --threshold 0.5 --save_path ./output --device cpu
    edge --get_pipeline_config instance_segmentation --save_path ./my_path
    edge models
    edge serve --model-dir DIR --host 127.0.0.1 --port 8080
    edge bundle edge_models/PP-YOLOE_seg-demo-arm-int8 --android android_demo
    edge bench --model edge_models/PP-YOLOE_seg-demo-x86 --input samples/synthetic --json bench.json

`edge export` and `edge demo` come from the exporter when it is installed (export/cli.py,
through edge/plugins.py): the runtime itself never imports it.
"""
from __future__ import annotations

import argparse
import logging
import signal
import socket
import sys
from pathlib import Path
from typing import Any, Dict, List, Optional

from . import plugins, progress
from .argtypes import COUNT, NON_NEGATIVE, NON_NEGATIVE_INT, PORT, POSITIVE, OneLineParser
from .config import BACKENDS, FALLBACK_POLICIES
from .backends.lite import POWER_MODES
from .errors import EdgeError, Terminated
from .serve.limits import MiB, ServeLimits


def _model_overrides(model: Optional[str], backend: Optional[str], threads: Optional[int] = None,
                     server_url: Optional[str] = None, fallback: Optional[str] = None,
                     power_mode: Optional[str] = None) -> Dict[str, Any]:
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
    if power_mode:
        module["power_mode"] = power_mode
    overrides: Dict[str, Any] = {"SubModules": {"InstanceSegmentation": module}} if module else {}
    serving = {k: v for k, v in (("url", server_url), ("fallback", fallback)) if v}
    if serving:
        overrides["Serving"] = serving
    return overrides


def cmd_predict(args: argparse.Namespace) -> int:
    from .pipeline import create_pipeline

    input_arg: Any = int(args.input) if args.input.isdigit() else args.input  # camera index
    overrides = _model_overrides(args.model, args.backend, args.threads, args.server_url, args.fallback, args.power_mode)
    pipeline = create_pipeline(args.pipeline, config=overrides, device=args.device)
    count = 0
    total = input_count(input_arg)
    results = pipeline.predict(input_arg, threshold=args.threshold)
    if total != 1:  # a directory, a list, a video or a camera: a bar on a terminal
        results = progress.bar(results, total=total, desc="predict", unit="img")
    for result in results:
        count += 1
        result.print()
        if args.save_path:
            result.save_to_img(args.save_path)
            result.save_to_json(args.save_path)
    logging.getLogger("edge").info("%d result(s), computed by %s", count, pipeline.predictor.name)
    return 0


def input_count(source: Any) -> Optional[int]:
    """How many results `predict` will give, where cheap to know (for the bar); None if unknown."""
    from .inputs import IMAGE_SUFFIXES, PDF_SUFFIXES, VIDEO_SUFFIXES

    if isinstance(source, int):
        return None  # a camera: no end
    path = Path(str(source))
    if path.is_dir():
        return sum(1 for p in path.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES | PDF_SUFFIXES)
    if path.suffix.lower() in VIDEO_SUFFIXES and path.is_file():
        import cv2

        capture = cv2.VideoCapture(str(path))
        frames = int(capture.get(cv2.CAP_PROP_FRAME_COUNT))
        capture.release()
        return frames if frames > 0 else None
    return 1 if path.suffix.lower() not in PDF_SUFFIXES else None


def cmd_bench(args: argparse.Namespace) -> int:
    from .bench import format_report, load_inputs, parse_candidates, run_bench, write_json

    candidates = parse_candidates(args.model, args.compare)  # checked before anything is loaded
    inputs = load_inputs(args.input)
    if args.json and not Path(args.json).parent.is_dir():
        raise EdgeError(f"--json {args.json}: the folder {Path(args.json).parent} does not exist")
    with progress.bar(total=args.repeat, desc="bench", unit="round") as rounds:
        report = run_bench(candidates, inputs, threads=args.threads, power_mode=args.power_mode, warmup=args.warmup,
                           repeat=args.repeat, threshold=args.threshold, progress=rounds)
    print(format_report(report))
    if args.json:
        write_json(report, Path(args.json))
        print(f"\nJSON report: {args.json}")
    return 0


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
        max_body_bytes=int(args.max_body_mb * MiB), body_timeout=args.body_timeout, max_pixels=args.max_pixels,
        max_decodes=args.max_decodes, url_timeout=args.url_timeout, url_max_bytes=int(args.url_max_mb * MiB),
        allow_private_urls=args.allow_private_urls, workers=args.workers, max_queue=args.max_queue,
        graceful_timeout=args.graceful_timeout,
    )
    check_listen_address(args.host, args.port)  # before the model is loaded
    serve(pipeline_factory(args.pipeline, overrides), host=args.host, port=args.port, limits=limits,
          visualize=not args.no_visualize, log_level="debug" if args.verbose else "info")
    return 0


def check_listen_address(host: str, port: int) -> None:
    """Fail now, with the reason, if the server could not listen on host:port."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except (socket.gaierror, UnicodeError) as err:
        raise EdgeError(f"--host {host!r} is not an address of this machine ({err}); use 0.0.0.0 or 127.0.0.1") from None
    family, kind, proto, _, address = infos[0]
    with socket.socket(family, kind, proto) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn does
        try:
            probe.bind(address)
        except OSError as err:
            raise EdgeError(f"cannot listen on {host}:{port} ({err.strerror}); pick another --port or --host") from None


def cmd_eval(args: argparse.Namespace) -> int:
    import json

    from .evaluate import default_images_dir, evaluate_predictor, load_ground_truth
    from .pipeline import create_pipeline

    ground_truth = load_ground_truth(args.data)  # checked before the model is loaded
    pipeline = create_pipeline(config=_model_overrides(args.model, args.backend, args.threads))
    report = evaluate_predictor(pipeline.predictor, ground_truth, args.images or default_images_dir(args.data),
                                threshold=args.threshold)
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
    parser = OneLineParser(prog="edge", description="PaddleX instance segmentation on the edge.")
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
    p.add_argument("--backend", choices=BACKENDS, help="override the config's backend")
    p.add_argument("--threads", type=COUNT, help="CPU threads")
    p.add_argument("--power-mode", choices=POWER_MODES, help="Paddle Lite on ARM: which cores to bind (MobileConfig.set_power_mode)")
    p.add_argument("--server-url", help="the `edge serve` endpoint to fall back to (sets Serving.url)")
    p.add_argument("--fallback", choices=FALLBACK_POLICIES, help="when to use the server")
    p.add_argument("--quiet", action="store_true", help="no progress bar (there is none when stderr is not a terminal)")
    p.set_defaults(func=cmd_predict)

    b = sub.add_parser("bundle", help="put a bundle into the Android demo app (its assets), selected as the app's model")
    b.add_argument("bundle", help="an ARM bundle directory made by `edge export` (model.nb + manifest.json)")
    b.add_argument("--android", required=True, metavar="DIR", help="the Android demo project (android_demo/)")
    b.set_defaults(func=cmd_bundle)

    limits = ServeLimits()  # the defaults, shown by --help
    s = sub.add_parser("serve", help="serve the pipeline over HTTP with PaddleX's API (POST /instance-segmentation)")
    s.add_argument("--pipeline", default="instance_segmentation", help="pipeline name or pipeline YAML path")
    s.add_argument("--model", help="a zoo model name (any of the 15), a bundle directory or an inference directory")
    s.add_argument("--model-dir", help="a local inference directory (or bundle) to serve")
    s.add_argument("--backend", choices=[b for b in BACKENDS if b != "remote"], help="override the config's backend")
    s.add_argument("--threads", type=COUNT, help="CPU threads per worker")
    s.add_argument("--threshold", type=float, help="default score threshold in (0, 1) when a request sends none")
    s.add_argument("--host", default="0.0.0.0", help="bind address (default 0.0.0.0 = every interface, as PaddleX; "
                   "use 127.0.0.1 for this machine only)")
    s.add_argument("--port", type=PORT, default=8080, help="port (default 8080)")
    s.add_argument("--workers", type=COUNT, default=1, help="inference threads, each with its own copy of the model")
    s.add_argument("--max-queue", type=NON_NEGATIVE_INT, default=limits.max_queue,
                   help="requests that may wait beyond --workers; more get 503 (default %(default)s)")
    s.add_argument("--max-body-mb", type=POSITIVE, default=limits.max_body_bytes / MiB,
                   help="largest request body in MiB, larger: 413 (default %(default)g)")
    s.add_argument("--body-timeout", type=POSITIVE, default=limits.body_timeout,
                   help="seconds a client has to send a request's head, then its body; slower: 408 (default %(default)g)")
    s.add_argument("--max-pixels", type=COUNT, default=limits.max_pixels,
                   help="largest image in pixels, larger: 400 (default %(default)s)")
    s.add_argument("--max-decodes", type=COUNT, default=None,
                   help="images decoded and held in memory at once (default: --workers + 1); "
                        "peak memory grows with max-decodes x max-pixels x 3 bytes")
    s.add_argument("--url-timeout", type=POSITIVE, default=limits.url_timeout,
                   help="seconds to fetch an image given as a URL, in all (default %(default)g)")
    s.add_argument("--url-max-mb", type=POSITIVE, default=limits.url_max_bytes / MiB,
                   help="largest image download in MiB (default %(default)g)")
    s.add_argument("--allow-private-urls", action="store_true",
                   help="fetch URLs on loopback / private networks too (refused by default: request forgery)")
    s.add_argument("--no-visualize", action="store_true", help="leave result.image out unless a request asks for it")
    s.add_argument("--graceful-timeout", type=NON_NEGATIVE, default=limits.graceful_timeout,
                   help="seconds shutdown waits for requests in flight (default %(default)g)")
    s.set_defaults(func=cmd_serve)

    v = sub.add_parser("eval", help="mask AP and box AP (pycocotools) of a model on a COCO-format data set")
    v.add_argument("--model", help="bundle, inference directory or model name (default: the demo model)")
    v.add_argument("--data", required=True, type=Path, help="COCO annotations json (images in images/ beside it)")
    v.add_argument("--images", type=Path, help="image folder, if not images/ beside the json")
    v.add_argument("--threshold", type=float, default=0.05, help="score threshold for AP (default 0.05)")
    v.add_argument("--backend", choices=BACKENDS)
    v.add_argument("--threads", type=COUNT)
    v.add_argument("--json", help="also write the full report here")
    v.add_argument("--quiet", action="store_true", help="no progress bar (there is none when stderr is not a terminal)")
    v.set_defaults(func=cmd_eval)

    k = sub.add_parser("bench", help="per-stage latency (p50/p90/p99), FPS, memory and model size; --compare models side by side")
    k.add_argument("--model", help="a bundle, an inference directory or a model name; MODEL@lite / MODEL@paddle picks the engine")
    k.add_argument("--input", required=True, type=Path, help="an image or a directory of images")
    k.add_argument("--compare", nargs="+", metavar="MODEL",
                   help="more models measured side by side with --model (or 2+ models alone); ratios are to the first")
    k.add_argument("--threads", type=COUNT, help="CPU threads")
    k.add_argument("--power-mode", choices=POWER_MODES, help="Paddle Lite power mode (ARM builds)")
    k.add_argument("--warmup", type=NON_NEGATIVE_INT, default=3, help="unmeasured predictions per model first (default 3)")
    k.add_argument("--repeat", type=COUNT, default=20,
                   help="measured predictions per model, cycling through the images (default 20)")
    k.add_argument("--threshold", type=float, default=0.5, help="score threshold (default 0.5)")
    k.add_argument("--json", help="write the full report (with every sample) here")
    k.add_argument("--quiet", action="store_true", help="no progress bar (there is none when stderr is not a terminal)")
    k.set_defaults(func=cmd_bench)

    m = sub.add_parser("models", help="list the 15 models and where each runs")
    m.set_defaults(func=cmd_models)
    plugins.add_commands(sub)  # `edge export`, `edge demo` when the exporter is installed
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
        with progress.shown(not getattr(args, "quiet", False)):
            return args.func(args)
    except EdgeError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"edge {args.command or ''}: interrupted (SIGINT); nothing half-written was left", file=sys.stderr)
        return 128 + signal.SIGINT
    except Terminated:
        print(f"edge {args.command or ''}: terminated (SIGTERM); nothing half-written was left", file=sys.stderr)
        return 128 + signal.SIGTERM


if __name__ == "__main__":
    sys.exit(main())
