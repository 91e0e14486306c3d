"""`edge export` and `edge demo`: the exporter's sub-commands, added to `edge` through edge/plugins.py.

Nothing here imports paddle at module level, so `edge --help` works on a board without it; the
commands check for the toolchain first and name the missing extra.
"""
from __future__ import annotations

import argparse
import signal
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

from edge.argtypes import COUNT
from edge.errors import EdgeError, Terminated

from .precision import Precision
from .toolchain import require_toolchain

SAMPLES_DIR = Path(__file__).resolve().parents[1] / "samples"


@contextmanager
def unwind_on_signals() -> Iterator[None]:
    """SIGINT and SIGTERM raise (KeyboardInterrupt, Terminated) instead of killing the process,
    so that scratch and staging directories are removed on the way out (`edge` exits 130 / 143).

    Paddle installs its own SIGTERM handler when it is imported (it prints a C++ report and
    exits, leaving every temporary directory behind), so Paddle is imported first.
    """
    import paddle  # noqa: F401

    def terminate(signum: int, frame: Any) -> None:
        raise Terminated()

    previous = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    signal.signal(signal.SIGTERM, terminate)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler if handler is not None else signal.SIG_DFL)


def cmd_export(args: argparse.Namespace) -> int:
    require_toolchain("`edge export`")
    with unwind_on_signals():
        return _export(args)


def _export(args: argparse.Namespace) -> int:
    from .exporter import ExportOptions
    from .source import resolve_source

    source = resolve_source(args.model, args.model_dir, args.weights, args.num_classes, args.labels,
                            tuple(args.input_size) if args.input_size else None, download=not args.offline)
    options = ExportOptions(target=args.target, graph=args.graph,
                            precision=Precision.from_flags(args.int8, args.fp16, args.weight_only),
                            calib_dir=args.calib, calib_count=args.calib_count, algo=args.algo,
                            out_dir=Path(args.out), verify=not args.no_verify, eval_data=args.eval_data,
                            verify_arm=args.verify_arm)
    export_with_report(source, options)
    return 0


def export_with_report(source: Any, options: Any) -> Any:
    """Run the export chain, printing each step's time and the final report."""
    from .exporter import export_model

    print(f"exporting {source.model_name} for {options.target}" + options.precision.title_suffix, flush=True)
    result = export_model(source, options, on_step=lambda name, sec: print(f"  {name:<9} {sec:7.1f} s", flush=True))
    print(export_report(result))
    return result


def export_report(result: Any) -> str:
    """The short report printed at the end of `edge export`, with the next commands to run."""
    m = result.manifest
    lines = [f"\nbundle: {result.path}"]
    if "sha256" in m:
        size = (result.path / m["model_file"]).stat().st_size / 1e6
        lines.append(f"  {m['model_file']}: {size:.1f} MB, {m['precision']}, target {m['target']}, sha256 {m['sha256'][:12]}")
    for name, check in (m.get("verification") or {}).items():
        keys = ("matched", "reference_instances", "max_box_diff_px", "min_mask_agreement", "paddle_mask_ap",
                "lite_mask_ap", "fp32_mask_ap", "int8_mask_ap", "int8_arm_mask_ap", "mask_ap_drop", "engine")
        lines.append(f"  verify {name}: " + ", ".join(f"{k}={check[k]:.4g}" if isinstance(check[k], float) else f"{k}={check[k]}"
                                                  for k in keys if k in check))
    lines += ["next:", f"  edge predict --model {result.path} --input <image|dir|video> --save_path ./output"]
    if m.get("target") == "arm":
        lines.append(f"  copy {result.path} to the board and run the same command there (Paddle Lite ARM build)")
    return "\n".join(lines)


def cmd_demo(args: argparse.Namespace) -> int:
    """The main job on the embedded default, offline: export the demo model, predict on the samples."""
    require_toolchain("`edge demo`")
    with unwind_on_signals():
        return _demo(args)


def _demo(args: argparse.Namespace) -> int:
    from edge.bundle import host_target
    from edge.pipeline import create_pipeline

    from .demo import demo_source
    from .exporter import ExportOptions

    source = demo_source()
    plans = [ExportOptions(target=host_target(), out_dir=Path(args.out))]
    if not args.quick:  # the deliverable for boards
        plans.append(ExportOptions(target="arm", precision=Precision.INT8, out_dir=Path(args.out)))
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


def add_commands(sub: Any) -> None:
    """Add `export` and `demo` to the `edge` sub-command parsers."""
    from .exporter import TARGETS
    from .quantize import ALGOS

    e = sub.add_parser("export", help="export an edge model to a Paddle Lite bundle (default: the offline demo model)")
    src = e.add_argument_group("source (default: the project's demo model, offline)")
    src.add_argument("--model", help="PP-YOLOE_seg-S or Mask-RT-DETR-S (official weights, downloaded), or PP-YOLOE_seg-demo")
    src.add_argument("--model-dir", type=Path, help="a local inference directory (legacy or PIR), official or fine-tuned")
    src.add_argument("--weights", type=Path, help="a .pdparams file (fine-tuned weights) for the --model architecture")
    src.add_argument("--num-classes", type=COUNT, help="classes of --weights (default 80)")
    src.add_argument("--labels", type=Path, help="label file, one class name per line")
    src.add_argument("--input-size", type=COUNT, nargs=2, metavar=("H", "W"), help="model input size (default 640 640)")
    src.add_argument("--offline", action="store_true", help="never download")
    e.add_argument("--graph", choices=["edge", "reference"], default="edge", help="graph of rebuilt programs")
    e.add_argument("--target", choices=list(TARGETS), default="arm",
                   help="arm (default), x86, opencl; paddle stops before opt (Lite-ready legacy directory)")
    q = e.add_argument_group("precision")
    q.add_argument("--int8", action="store_true", help="calibrated post-training INT8 (real int8 kernels on ARM)")
    q.add_argument("--calib", type=Path, help="calibration image directory (default: shipped images)")
    q.add_argument("--calib-count", type=COUNT, default=32, help="calibration images used (default 32)")
    q.add_argument("--algo", default="avg", choices=list(ALGOS), help="calibration algorithm (default avg; see export/quantize.py)")
    q.add_argument("--fp16", action="store_true", help="FP16 kernels (ARMv8.2 CPUs)")
    q.add_argument("--weight-only", choices=["int8", "int16"], help="weight-only quantization: smaller file, FP32 compute")
    e.add_argument("--out", default="edge_models", help="output root (default ./edge_models)")
    e.add_argument("--no-verify", action="store_true", help="skip the verification stage")
    e.add_argument("--verify-arm", action=argparse.BooleanOptionalAction, default=None,
                   help="run the ARM .nb on ARM kernels under qemu and record the figures (default: on when "
                        "qemu-aarch64-static and the project's aarch64 runner are here)")
    e.add_argument("--eval-data", type=Path, help="COCO annotation json (images beside it) for mask AP in the INT8 check")
    e.add_argument("--quiet", action="store_true",
                   help="no progress bars for calibration and verification (none when stderr is not a terminal)")
    e.set_defaults(func=cmd_export)

    d = sub.add_parser("demo", help="offline: export the demo model (host + ARM INT8) and segment the sample images")
    d.add_argument("--save_path", default="./output", help="where pictures and JSON go (default ./output)")
    d.add_argument("--out", default="edge_models", help="where bundles go (default ./edge_models)")
    d.add_argument("--quick", action="store_true", help="host bundle only, no ARM INT8 export")
    d.add_argument("--quiet", action="store_true", help="no progress bars (none when stderr is not a terminal)")
    d.set_defaults(func=cmd_demo)
