"""The optimize stage: run Paddle Lite's `opt` on a legacy inference directory, in a subprocess.

Public interface (used by `edge export`):

    optimize(model_dir, out_file_stem, target="arm", *, precision=Precision.FP32, timeout_s=1800.0) -> Path
        Converts `<model_dir>/inference.pdmodel` (+ `inference.pdiparams`; a program without
        parameters is fine) to `<out_file_stem>.nb` (naive_buffer) and returns that path.
        target: "arm" (valid places `arm`), "x86" (`x86`), "opencl" (`opencl,arm`).
        precision (export/precision.py): WEIGHT_ONLY_INT8 / _INT16 -- opt's `--quant_model
            --quant_type`, which stores *weights* as int8/int16 and turns them back into FP32 when
            the model loads: a smaller file, NOT int8 inference (that needs a PTQ-quantized
            program, converted like FP32); FP16 -- opt's `--enable_fp16`, FP16 kernels for ARMv8.2
            CPUs (arm target only).
        opt runs in a child process (so a segfault cannot take the caller down) with a timeout.
        A crash, non-zero exit, timeout or missing output becomes `edge.errors.ExportError`
        naming the likely op(s) -- from opt's own message, from Lite's op-support table
        (`check_if_model_supported`, as `paddle_lite_opt --print_model_ops=true`), and from the
        compat rewrites the program still needs -- with opt's last log lines. Output is written
        under a temporary name and renamed on success: a failure leaves no `.nb` behind.

    model_op_support(model_dir, target="arm", timeout_s=300.0) -> dict[str, bool]
        Lite's op-support table for a program: {op type: has a kernel for `target`}.

    nb_kernels(nb_path) -> list[NbKernel]
        The kernels chosen for every op of a produced `.nb`. opt records each op's kernel in the
        op attribute `__@kernel_type_attr@__` as "op/alias/target/precision/layout" (numeric
        enums of lite/api/paddle_place.h); this reads those strings from the file's topology
        section (header: uint16 meta version, char[16] Lite version, uint64 topology size).
        `NbKernel.precision` is a name ("float", "int8", "fp16", ...): an ARM INT8 `.nb` shows
        conv2d / fc / matmul kernels with precision "int8".

    nb_lite_version(nb_path) -> str    the Lite version string stored in a `.nb` header.
"""
from __future__ import annotations

import json
import logging
import os
import re
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional

from edge.errors import ExportError
from edge.inference_dir import LEGACY_PROGRAM, PARAMS_FILE

from .precision import Precision

logger = logging.getLogger(__name__)

VALID_PLACES = {"arm": "arm", "x86": "x86", "opencl": "opencl,arm"}
WEIGHT_ONLY_QUANT_TYPES = {"int8": "QUANT_INT8", "int16": "QUANT_INT16"}
LOG_TAIL_LINES = 12

# Runs in the child process: the Opt API of the paddlelite wheel installed next to sys.executable.
_DRIVER = r"""
import json, sys
args = json.loads(sys.argv[1])
import paddlelite.lite as lite
opt = lite.Opt()
opt.set_model_file(args["model_file"])
opt.set_param_file(args["param_file"])
if args["mode"] == "ops":
    opt.set_valid_places(args["places"])
    sys.stdout.flush()
    opt.check_if_model_supported(True)
    sys.exit(0)
opt.set_model_type("naive_buffer")
opt.set_optimize_out(args["out"])
if args["fp16"]:
    opt.enable_fp16()
opt.set_valid_places(args["places"])
if args["quant_type"]:
    opt.set_quant_model(True)
    opt.set_quant_type(args["quant_type"])
opt.run()
"""


@dataclass(frozen=True)
class NbKernel:
    """One op of an optimized `.nb` and the kernel opt picked for it."""

    op_type: str
    alias: str
    target: str
    precision: str
    layout: str


_TARGETS = ["unk", "host", "x86", "cuda", "arm", "opencl", "any", "fpga", "npu", "xpu", "bm", "mlu", "rknpu",
            "apu", "huawei_ascend_npu", "imagination_nna", "intel_fpga", "metal", "nnadapter"]
_PRECISIONS = ["unk", "float", "int8", "int32", "any", "fp16", "bool", "int64", "int16", "uint8", "fp64"]
_LAYOUTS = ["unk", "nchw", "any", "nhwc", "image_default", "image_folder", "image_nw", "metal_2d_array", "metal_2d"]


def _enum_name(names: List[str], value: int) -> str:
    return names[value] if 0 <= value < len(names) else str(value)


def _check_target(target: str) -> str:
    if target not in VALID_PLACES:
        raise ExportError(f"unknown Lite target {target!r}; choose one of {sorted(VALID_PLACES)}")
    return VALID_PLACES[target]


def _model_files(model_dir: Path, scratch: Path) -> Dict[str, str]:
    """Model and params paths for opt; a program without parameters gets an empty params file."""
    model_file = model_dir / LEGACY_PROGRAM
    if not model_file.is_file():
        raise ExportError(f"{model_dir} has no {LEGACY_PROGRAM}; pass a legacy inference directory (after the compat stage)")
    params_file = model_dir / PARAMS_FILE
    if not params_file.is_file():
        params_file = scratch / PARAMS_FILE
        params_file.write_bytes(b"")  # opt insists on a params file; zero parameters = empty file
    return {"model_file": str(model_file), "param_file": str(params_file)}


def _run_driver(args: dict, timeout_s: float, verbose_log: bool) -> subprocess.CompletedProcess:
    env = dict(os.environ)
    if verbose_log:
        env["GLOG_v"] = "1"  # Lite then logs each optimizer pass, so a crash can be placed
    return subprocess.run(
        [sys.executable, "-c", _DRIVER, json.dumps(args)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        env=env, timeout=timeout_s, text=True, errors="replace",
    )


def model_op_support(model_dir, target: str = "arm", timeout_s: float = 300.0) -> Dict[str, bool]:
    """{op type: Lite has a kernel for it on `target`} for the program in `model_dir`."""
    places = _check_target(target)
    with tempfile.TemporaryDirectory(prefix="edge-opt-") as scratch:
        files = _model_files(Path(model_dir), Path(scratch))
        try:
            result = _run_driver({"mode": "ops", "places": places, **files}, timeout_s, verbose_log=False)
        except subprocess.TimeoutExpired as exc:
            raise ExportError(f"Lite's op-support check on {model_dir} did not finish in {timeout_s:.0f} s") from exc
    table = _parse_op_table(result.stdout)
    if not table:  # (the check exits with code 1 even when it printed its table)
        raise ExportError(
            f"Lite's op-support check failed on {model_dir} ({_describe_exit(result.returncode)}):\n"
            + _log_tail(result.stdout)
        )
    return table


def _parse_op_table(text: str) -> Dict[str, bool]:
    """Parse opt's "OPs in the input model include:" table; a row with no `Y` has no kernel.

    Ops Lite has never heard of are missing from the table; opt names them in a line
    "These unsupported ops are: 'a', 'b'." (and then aborts, hence no exit-code check)."""
    table: Dict[str, bool] = {}
    lines = text.splitlines()
    for i, line in enumerate(lines):
        if line.strip().startswith("OP_name"):
            for row in lines[i + 1:]:
                cells = row.split()
                if not cells or not re.fullmatch(r"[A-Za-z0-9_]+", cells[0]) or any(c != "Y" for c in cells[1:]):
                    break
                table[cells[0]] = len(cells) > 1
            break
    # Ops Lite does not know at all are left out of the table and listed in an error line instead.
    for listed in re.findall(r"These unsupported ops are: (.*)", text):
        for op in re.findall(r"'(\w+)'", listed):
            table[op] = False
    return table


def _describe_exit(returncode: int) -> str:
    if returncode < 0:
        try:
            name = signal.Signals(-returncode).name
        except ValueError:
            name = f"signal {-returncode}"
        kind = "crashed" if name in ("SIGSEGV", "SIGBUS", "SIGILL", "SIGFPE") else "aborted"
        return f"opt {kind} with {name}"
    return f"opt exited with code {returncode}"


def _log_tail(log: str, lines: int = LOG_TAIL_LINES) -> str:
    """opt's last message lines (verbose per-pass lines dropped)."""
    kept = [ln for ln in log.splitlines() if ln.strip() and not re.match(r"^\[[1-9] ", ln)]
    return "\n".join("    " + ln for ln in kept[-lines:])


def _crashed_in_pass(log: str) -> Optional[str]:
    running = re.findall(r"== Running pass: (\S+)", log)
    finished = set(re.findall(r"== Finished running: (\S+)", log))
    if running and running[-1] not in finished:
        return running[-1]
    return None


_OP_PATTERNS = [
    (re.compile(r"No kernels found for (\w+)"), "no kernel for {0}"),
    (re.compile(r"No attributes called (\w+) found for (\w+)"), "{1} lacks attribute {0}"),
    (re.compile(r"Can't find a 'calib' kernel to trans: .*:(\w+)\s*$", re.M), "{0} gets an input type it has no kernel for"),
    (re.compile(r"ConvertVarType\] unknown type 0"), "a BOOL tensor (parameter) Lite cannot load"),
]


def _diagnose(model_dir: Path, target: str, log: str, timeout_s: float) -> List[str]:
    """Reasons, most specific first, why opt failed on this program."""
    reasons = []
    for pattern, template in _OP_PATTERNS:
        for match in pattern.finditer(log):
            reason = template.format(*match.groups())
            if reason not in reasons:
                reasons.append(reason)
    try:
        support = model_op_support(model_dir, target, timeout_s=min(timeout_s, 300.0))
        unsupported = sorted(op for op, ok in support.items() if not ok)
        if unsupported:
            reasons.append(f"ops with no Lite kernel for {target}: {', '.join(unsupported)}")
    except ExportError as exc:
        logger.warning("op-support check failed too: %s", exc)
    try:
        from export.compat import pending_rewrites

        pending = pending_rewrites(model_dir)
        if pending:
            reasons.append(
                "the program still needs compat rewrites (run export.compat.apply_compat_passes first): "
                + "; ".join(f"{name}: {lines[0]}" + (f" (+{len(lines) - 1} more)" if len(lines) > 1 else "")
                            for name, lines in pending.items())
            )
    except Exception as exc:  # diagnosis must never hide the original failure
        logger.warning("compat diagnosis failed: %s", exc)
    crashed_pass = _crashed_in_pass(log)
    if crashed_pass:
        reasons.append(f"opt stopped inside its optimizer pass {crashed_pass}")
    return reasons


def optimize(model_dir, out_file_stem, target: str = "arm", *, precision: Precision = Precision.FP32,
             timeout_s: float = 1800.0) -> Path:
    """Convert a legacy inference directory to `<out_file_stem>.nb` for `target`; returns the `.nb` path."""
    places = _check_target(target)
    model_dir, out_file_stem = Path(model_dir), Path(out_file_stem)
    fp16 = precision is Precision.FP16
    if fp16 and target != "arm":
        raise ExportError(f"fp16 kernels exist for ARMv8.2 only; use target='arm', not {target!r}")
    out_dir = out_file_stem.parent
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ExportError(f"cannot create output directory {out_dir}: {exc}") from exc
    final = out_file_stem.with_name(out_file_stem.name + ".nb")
    logger.info("optimizing %s for %s (%s) -> %s", model_dir, target, precision.describe(), final)

    with tempfile.TemporaryDirectory(prefix="edge-opt-") as scratch:
        files = _model_files(model_dir, Path(scratch))
        try:
            staging = Path(tempfile.mkdtemp(prefix=f".{out_file_stem.name}.", dir=out_dir))
        except OSError as exc:
            raise ExportError(f"cannot write to output directory {out_dir}: {exc}") from exc
        staged_stem = staging / "model"
        args = {"mode": "optimize", "places": places, "out": str(staged_stem), "fp16": fp16,
                "quant_type": WEIGHT_ONLY_QUANT_TYPES.get(precision.weight_only or ""), **files}
        try:
            try:
                result = _run_driver(args, timeout_s, verbose_log=True)
            except subprocess.TimeoutExpired as exc:
                raise ExportError(
                    f"paddle_lite_opt did not finish converting {model_dir} for {target} within {timeout_s:.0f} s; "
                    "nothing was written"
                ) from exc
            staged_nb = staged_stem.with_name("model.nb")
            if result.returncode != 0 or not staged_nb.is_file():
                what = _describe_exit(result.returncode) if result.returncode != 0 else "opt wrote no .nb"
                reasons = _diagnose(model_dir, target, result.stdout, timeout_s)
                likely = "".join(f"\n  - {r}" for r in reasons) or "\n  - (no op named; see the log below)"
                raise ExportError(
                    f"converting {model_dir} for {target} failed: {what}. Likely cause:{likely}\n"
                    f"  opt's last lines:\n{_log_tail(result.stdout)}\nNo .nb was written."
                )
            os.replace(staged_nb, final)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    logger.info("wrote %s (%.1f MB)", final, final.stat().st_size / 1e6)
    return final


def nb_lite_version(nb_path) -> str:
    header = Path(nb_path).read_bytes()[:18]
    if len(header) < 18:
        raise ExportError(f"{nb_path} is too short to be a Paddle Lite .nb file")
    return header[2:18].split(b"\0", 1)[0].decode("ascii", "replace")


_KERNEL_STRING = re.compile(rb"([A-Za-z0-9_]+)/([A-Za-z0-9_]+)/(\d{1,2})/(\d{1,2})/(\d{1,2})\x00")


def nb_kernels(nb_path) -> List[NbKernel]:
    """The kernel of every op in a `.nb`, read from the `__@kernel_type_attr@__` strings."""
    data = Path(nb_path).read_bytes()
    if len(data) < 26:
        raise ExportError(f"{nb_path} is too short to be a Paddle Lite .nb file")
    (meta_version,) = struct.unpack_from("<H", data, 0)
    (topology_size,) = struct.unpack_from("<Q", data, 18)
    if meta_version != 2 or 26 + topology_size > len(data):
        raise ExportError(f"{nb_path} is not a naive_buffer model written by Paddle Lite 2.x (meta version {meta_version})")
    topology = data[26:26 + topology_size]
    kernels = []
    for match in _KERNEL_STRING.finditer(topology):
        # flatbuffers strings are length-prefixed: accept only a match whose uint32 prefix fits.
        start = match.start()
        if start < 4 or struct.unpack_from("<I", topology, start - 4)[0] != match.end() - 1 - start:
            continue
        op_type, alias = match.group(1).decode(), match.group(2).decode()
        target, precision, layout = (int(g) for g in match.groups()[2:])
        kernels.append(NbKernel(op_type, alias, _enum_name(_TARGETS, target), _enum_name(_PRECISIONS, precision),
                                _enum_name(_LAYOUTS, layout)))
    if not kernels:
        raise ExportError(f"{nb_path}: found no kernel records; is it an optimized .nb?")
    return kernels


def kernel_summary(kernels: List[NbKernel]) -> Dict[str, int]:
    """Counts of "op:precision" pairs, e.g. {"conv2d:int8": 72, "sigmoid:float": 3}."""
    return dict(Counter(f"{k.op_type}:{k.precision}" for k in kernels))
