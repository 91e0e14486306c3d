"""`edge export`: source -> program -> compat -> quantize -> optimize -> verify -> bundle.

Each step is its own module; this one only chains them, times them, and makes sure that a
failure anywhere leaves nothing half-written (all work happens in a scratch directory; the
bundle is written atomically at the very end).
"""
from __future__ import annotations

import logging
import os
import tempfile
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, List, Optional

from edge.bundle import is_bundle, open_bundle
from edge.errors import ExportError
from edge.files import publish_copy
from edge.inference_dir import INFERENCE_YML, is_inference_dir
from edge.spec import ModelSpec
from edge.zoo import DEMO_MODEL

from .precision import Precision
from .source import Source

logger = logging.getLogger(__name__)

TARGETS = ("arm", "x86", "opencl", "paddle")


@dataclass
class ExportOptions:
    target: str = "arm"
    graph: str = "edge"  # edge | reference (rebuilt programs only)
    precision: Precision = Precision.FP32
    calib_dir: Optional[Path] = None  # default: the source's own calibration images, else export/calib_images
    calib_count: Optional[int] = 32
    algo: str = "avg"
    out_dir: Path = Path("edge_models")
    verify: bool = True
    verify_arm: Optional[bool] = None  # run the ARM .nb on ARM kernels (qemu); None: when the emulator is here
    eval_data: Optional[Path] = None  # COCO json (images/ beside it) for mask AP in the checks; default: the source's

    @property
    def int8(self) -> bool:
        return self.precision is Precision.INT8


@dataclass
class ExportResult:
    path: Path
    manifest: Dict[str, Any]
    step_seconds: Dict[str, float] = field(default_factory=dict)


def bundle_name(model_name: str, options: ExportOptions) -> str:
    return f"{model_name}-{options.target}{options.precision.bundle_suffix}"


def _rebuild(source: Source, out_dir: Path, graph: str) -> Path:
    """Save `source.arch` with `source.weights` as a legacy inference directory."""
    if source.arch == DEMO_MODEL:
        from .demo import export_demo

        return export_demo(out_dir, graph=graph)
    from .networks import export_network

    return export_network(source.arch, out_dir, graph=graph, num_classes=len(source.labels), labels=source.labels,
                          input_size=tuple(source.input_size), weights=source.weights, model_name=source.model_name)


def check_output(final: Path, replaceable: Callable[[Path], bool], kind: str) -> None:
    """Report now, before minutes of work, an output root that cannot be written (it is created if
    missing) or a `final` that exists and is not an earlier output of this kind (never replaced)."""
    out_dir = final.parent
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        os.rmdir(tempfile.mkdtemp(prefix=".edge-write-check-", dir=out_dir))
    except OSError as exc:
        raise ExportError(f"--out {out_dir} cannot hold bundles ({exc.strerror or exc}); "
                          "choose a writable directory") from None
    if (final.exists() or final.is_symlink()) and not (final.is_dir() and replaceable(final)):
        raise ExportError(f"{final} exists and is not {kind}; "
                          "nothing was changed: move it away or choose another --out (only an earlier export is replaced)")


def calibration_images(source: Source, options: ExportOptions) -> List[Path]:
    from .quantize import DEFAULT_CALIB_DIR, list_calibration_images

    folder = options.calib_dir or source.calib_dir or DEFAULT_CALIB_DIR
    return list_calibration_images(Path(folder), options.calib_count)


def export_model(source: Source, options: ExportOptions,
                 on_step: Optional[Callable[[str, float], None]] = None) -> ExportResult:
    """Run the whole chain; returns the bundle (or, for target `paddle`, the legacy directory)."""
    if options.target not in TARGETS:
        raise ExportError(f"unknown target {options.target!r}; choose one of {', '.join(TARGETS)}")
    precision = Precision(options.precision)
    name = bundle_name(source.model_name, options)
    if options.target == "paddle":
        check_output(Path(options.out_dir) / name, is_inference_dir, "an exported program")
    else:
        check_output(Path(options.out_dir) / name, is_bundle, "a bundle")
    arm_check = _verify_arm_wanted(options)  # before minutes of work: asked for and impossible fails now
    seconds: Dict[str, float] = {}

    @contextmanager
    def step(name: str) -> Iterator[None]:
        logger.info("[%s] ...", name)
        started = time.perf_counter()
        yield
        seconds[name] = round(time.perf_counter() - started, 2)
        logger.info("[%s] done in %.1f s", name, seconds[name])
        if on_step:
            on_step(name, seconds[name])

    from .compat import apply_compat_passes

    with tempfile.TemporaryDirectory(prefix="edge-export-") as scratch:
        work = Path(scratch)
        with step("program"):
            program = _rebuild(source, work / "program", options.graph) if source.rebuild else source.legacy_dir
        with step("compat"):
            compat_report = apply_compat_passes(program, work / "fp32")
        fp32_dir = work / "fp32"
        spec = ModelSpec.from_inference_yml(fp32_dir / INFERENCE_YML)
        images = calibration_images(source, options) if (options.int8 or options.verify) else []

        deploy_dir, quant_record = fp32_dir, None
        if options.int8:
            with step("quantize"):
                from .quantize import quantize

                quant_record = quantize(fp32_dir, work / "int8", images, algo=options.algo)
            deploy_dir = work / "int8"

        if options.target == "paddle":
            out = _publish_program(deploy_dir, Path(options.out_dir) / name)
            return ExportResult(out, {"model_name": source.model_name, "target": "paddle"}, seconds)

        from .optimize import optimize

        with step("optimize"):
            nb = optimize(deploy_dir, work / "model", options.target, precision=precision)

        verification: Dict[str, Any] = {}
        if options.verify:
            with step("verify"):
                verification = _verify(fp32_dir, deploy_dir if options.int8 else None, spec, images, work,
                                       nb if options.target == "x86" and not options.int8 else None,
                                       options.eval_data or source.eval_data,
                                       nb if arm_check else None)

        from .bundle import write_bundle

        with step("bundle"):
            h, w = spec.input_size or (640, 640)
            extra = {
                "target": options.target,
                "precision": precision.compute,
                "quantization": quant_record or precision.record(),
                "verification": verification or None,
                "graph": options.graph if source.rebuild else "as-given",
                "compat_rewrites": {k: v for k, v in compat_report.changes.items() if v},
                "step_seconds": seconds,
            }
            from .lite_fixes import required_fixes
            from .optimize import nb_kernels

            fixes = required_fixes(nb_kernels(nb))
            if fixes:   # only then: a bundle any stock Lite runs right carries no such key
                extra["runtime_requires"] = fixes
                logger.warning("%s needs a Paddle Lite runtime with %s (stock 2.13-rc computes it wrong); "
                               "the project's aarch64 runtime has it", name, ", ".join(f["patch"] for f in fixes))
            out = write_bundle(Path(options.out_dir), name, nb, spec, [[1, 2], [1, 3, h, w], [1, 2]], extra=extra)
    return ExportResult(out, open_bundle(out).manifest, seconds)


def _verify_arm_wanted(options: ExportOptions) -> bool:
    """--verify-arm: on by default where ARM kernels can run here; asked for and impossible is an error."""
    if options.target != "arm" or not options.verify or options.verify_arm is False:
        return False
    from .emulator import unavailable_reason

    reason = unavailable_reason()
    if reason and options.verify_arm:
        raise ExportError(f"--verify-arm: {reason}")
    if reason:
        logger.warning("ARM verification skipped: %s. The bundle carries no ARM-kernel evidence.", reason)
    return reason is None


def _verify(fp32_dir: Path, int8_dir: Optional[Path], spec: ModelSpec, images: List[Path], work: Path,
            x86_nb: Optional[Path], eval_data: Optional[Path], arm_nb: Optional[Path] = None) -> Dict[str, Any]:
    from .bundle import write_bundle
    from .optimize import optimize
    from .verify import verify_fp32, verify_int8

    shapes = [[1, 2], [1, 3, *(spec.input_size or (640, 640))], [1, 2]]
    nb = x86_nb or optimize(fp32_dir, work / "verify_x86", "x86")
    check = write_bundle(work / "verify", "x86-fp32", nb, spec, shapes, extra={"target": "x86"})
    result: Dict[str, Any] = {"fp32_lite_x86_vs_paddle": verify_fp32(fp32_dir, check, images, eval_data=eval_data)}
    if int8_dir is not None:
        result["int8_program_vs_fp32"] = verify_int8(fp32_dir, int8_dir, images, eval_data=eval_data)
    if arm_nb is not None:
        from .verify_arm import verify_arm

        arm = write_bundle(work / "verify", "arm", arm_nb, spec, shapes, extra={"target": "arm"})
        key = "int8_arm_vs_fp32" if int8_dir is not None else "fp32_arm_vs_x86_lite"
        result[key] = verify_arm(arm, check, images, int8=int8_dir is not None, eval_data=eval_data)
    return result


def _publish_program(src: Path, final: Path) -> Path:
    """Target `paddle`: the Lite-ready legacy directory, replacing only an earlier one."""
    try:
        return publish_copy(src, final, replace_if=is_inference_dir)
    except OSError as exc:
        raise ExportError(f"cannot write {final}: {exc}; choose another --out") from None
