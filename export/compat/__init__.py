"""The compat stage: rewrite a legacy Paddle 3.x program so Paddle Lite 2.13rc0 can load and run it.

Public interface (used by `edge export`):

    apply_compat_passes(model_dir_in, model_dir_out, passes=None) -> CompatReport
        Reads `<model_dir_in>/inference.pdmodel` (+ `inference.pdiparams` when the program has
        parameters), applies every pass (or only those named in `passes`), and writes
        `<model_dir_out>/inference.pdmodel` + `inference.pdiparams` (an empty params file when the
        program has no parameters, which is what opt expects) plus a copy of every other file of
        the input directory (inference.yml, ...). The input is never modified; the output is
        written to a temporary sibling directory and renamed into place. Raises
        `edge.errors.ExportError` for a missing / unreadable / PIR-only input, a missing params
        file, or `model_dir_out` equal to `model_dir_in`.

    CompatReport.changes: {pass name: [one line per rewrite]}, for every pass that ran.
    CompatReport.changed_passes: names of the passes that changed something.

    pending_rewrites(model_dir) -> {pass name: [changes]}: what the passes would change (dry run;
        optimize() uses it to explain an opt failure).

    pass_names() -> list[str]: every pass, in the order it runs (parameter passes first). A pass
        is a function `pass(program: framework_pb2.ProgramDesc) -> list[str]` (parameter passes
        also take the `{name: numpy array}` params dict and may change it) that edits in place
        and returns one line per change (empty list: nothing to do).

The passes, and what goes wrong without them (measured with Paddle 3.0.0 legacy saves and Lite
2.13rc0 on x86; tests/export/test_compat.py reproduces each one):
    bool_params_to_fp32         BOOL parameter -> FP32 + cast to BOOL.   Without: opt aborts
                                (`ConvertVarType unknown type 0`), arm and x86.
    zero_dim_params_to_one_dim  0-D parameter -> [1]. Lite 2.13rc0 copes without it (measured);
                                kept so the params file agrees with the [1] var desc.
    scalars_to_typed_lists      assign_value / set_value SCALARS -> fp32_values / int32_values /
                                int64_values / bool_values (values kept too). Without: assign_value
                                aborts in run() (`CheckShape`); set_value runs but never writes
                                its constant (silently wrong output).
    swish_beta                  swish gets beta=1.0. Without: opt aborts (`No attributes called
                                beta found for swish`).
    reduce_dim_ints             reduce_* dim LONGS -> INTS. Without: opt aborts (`required type is
                                INTS`); Paddle 3 saves reduce_any / reduce_all this way.
    reduce_empty_dim_all        reduce_* with dim=[] and reduce_all=False (Paddle 3's `x.sum()`)
                                -> reduce_all=True over every axis. Without: run() segfaults.
    bmm_to_matmul_v2            bmm -> matmul_v2. Without: opt aborts (`No kernels found for bmm`).
    bool_mul_to_logical_and     bool*bool elementwise_mul -> logical_and. Without: opt aborts
                                (`Can't find a 'calib' kernel ... elementwise_mul`).
    add_missing_xshape          flatten_contiguous_range / flatten2 / reshape2 get an XShape output.
                                Without: opt segfaults on x86 for flatten -> matmul_v2 (arm
                                converts); opt aborts on a reshape2 without XShape (arm and x86).
                                NOT applied to transpose2 / squeeze2 / ...: a transpose2 with
                                XShape completes Lite's shuffle_channel pattern and Mask-RT-DETR's
                                deformable attention is misfused (run() crashes).
    zero_dim_to_one_dim         fill_constant / assign_value shape [] -> [1], 0-D var descs -> [1].
                                Without: run() aborts (`fill_constant ... no valid out_shape`).
Outputs that Paddle returns as 0-D come back from Lite as shape [1].
"""
from __future__ import annotations

import logging
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence

from edge.errors import ExportError
from edge.files import publishing
from edge.inference_dir import LEGACY_PROGRAM as MODEL_FILE
from edge.inference_dir import PARAMS_FILE, PIR_PROGRAM

logger = logging.getLogger(__name__)



@dataclass
class CompatReport:
    """What the compat stage did to one program."""

    model_dir_in: Path
    model_dir_out: Path
    changes: Dict[str, List[str]] = field(default_factory=dict)

    @property
    def changed_passes(self) -> List[str]:
        return [name for name, lines in self.changes.items() if lines]

    def summary(self) -> str:
        if not self.changed_passes:
            return "compat: no rewrite needed"
        return "compat: " + ", ".join(f"{name} ({len(self.changes[name])})" for name in self.changed_passes)


def _passes():
    # Imported lazily: the passes import paddle's protobuf module, and `export` must be imported first.
    from export.compat import attributes, op_rewrites, parameter_passes as params, shapes

    parameter_passes = [params.bool_params_to_fp32, params.zero_dim_params_to_one_dim]
    program_passes = [
        attributes.scalars_to_typed_lists, attributes.swish_beta, attributes.reduce_dim_ints, attributes.reduce_empty_dim_all,
        op_rewrites.bmm_to_matmul_v2, op_rewrites.bool_mul_to_logical_and,
        shapes.add_missing_xshape, shapes.zero_dim_to_one_dim,
    ]
    return parameter_passes, program_passes


def pass_names() -> List[str]:
    parameter_passes, program_passes = _passes()
    return [p.__name__ for p in parameter_passes + program_passes]


def _check_input(model_dir_in: Path, model_dir_out: Optional[Path] = None) -> None:
    if not model_dir_in.is_dir():
        raise ExportError(f"model directory {model_dir_in} does not exist; pass an inference directory")
    if not (model_dir_in / MODEL_FILE).is_file():
        hint = (f" It holds a PIR {PIR_PROGRAM}: rebuild it as a legacy program through the project's networks."
                if (model_dir_in / PIR_PROGRAM).exists() else "")
        raise ExportError(f"{model_dir_in} has no {MODEL_FILE}; Paddle Lite needs a legacy program.{hint}")
    if model_dir_out is None:
        return
    out, inp = model_dir_out.resolve(), model_dir_in.resolve()
    if out == inp or out in inp.parents:
        raise ExportError(f"compat output {model_dir_out} is (or contains) the input directory; choose another directory")
    # An existing output is replaced only if it is a previous program directory (or empty), never
    # an unrelated folder that happens to be named.
    if out.exists() and (not out.is_dir() or not _is_program_dir(out)):
        raise ExportError(f"compat output {model_dir_out} exists and is not an inference directory; "
                          "choose a new or empty directory")


def _load(model_dir: Path):
    """(program, params) of a legacy inference directory, with errors a user can act on."""
    import export  # noqa: F401  (PIR off before paddle's modules load)
    from export.compat.desc import persistable_names, read_program
    from export.compat.params_file import ParamsFormatError, read_combined_params

    try:
        program = read_program(model_dir / MODEL_FILE)
    except Exception as exc:  # protobuf raises its own DecodeError
        raise ExportError(f"{model_dir / MODEL_FILE} is not a readable Paddle program ({exc}); re-export it") from exc
    names = persistable_names(program)
    params_path = model_dir / PARAMS_FILE
    if names and not params_path.is_file():
        raise ExportError(f"{model_dir} has no {PARAMS_FILE} but the program has {len(names)} parameters; "
                          "copy the params file next to the program")
    try:
        params = read_combined_params(params_path, names) if names else {}
    except ParamsFormatError as exc:
        raise ExportError(f"{params_path} does not match {MODEL_FILE}: {exc}") from exc
    return program, params


def _run_passes(program, params, passes: Optional[Sequence[str]], model_dir: Path) -> Dict[str, List[str]]:
    parameter_passes, program_passes = _passes()
    known = {p.__name__ for p in parameter_passes + program_passes}
    unknown = set(passes or ()) - known
    if unknown:
        raise ExportError(f"unknown compat pass(es) {sorted(unknown)}; known: {sorted(known)}")
    selected: Callable[[Callable], bool] = lambda p: passes is None or p.__name__ in passes
    changes: Dict[str, List[str]] = {}
    try:
        for compat_pass in filter(selected, parameter_passes):
            changes[compat_pass.__name__] = compat_pass(program, params)
        for compat_pass in filter(selected, program_passes):
            changes[compat_pass.__name__] = compat_pass(program)
    except ValueError as exc:
        raise ExportError(f"cannot make {model_dir} loadable by Paddle Lite: {exc}") from exc
    return changes


def pending_rewrites(model_dir) -> Dict[str, List[str]]:
    """The rewrites the compat passes *would* make to `model_dir` (nothing is written)."""
    model_dir = Path(model_dir)
    _check_input(model_dir)
    program, params = _load(model_dir)
    return {name: lines for name, lines in _run_passes(program, params, None, model_dir).items() if lines}


def apply_compat_passes(model_dir_in, model_dir_out, passes: Optional[Sequence[str]] = None) -> CompatReport:
    """Rewrite the legacy program in `model_dir_in` for Paddle Lite and write it to `model_dir_out`."""
    model_dir_in, model_dir_out = Path(model_dir_in), Path(model_dir_out)
    _check_input(model_dir_in, model_dir_out)
    program, params = _load(model_dir_in)
    from export.compat.desc import program_bytes
    from export.compat.params_file import combined_params_bytes

    report = CompatReport(model_dir_in, model_dir_out, _run_passes(program, params, passes, model_dir_in))
    for name in report.changed_passes:
        for line in report.changes[name]:
            logger.info("compat %s: %s", name, line)
    logger.info("%s (%s -> %s)", report.summary(), model_dir_in, model_dir_out)
    _write_atomically(model_dir_in, model_dir_out, program_bytes(program), combined_params_bytes(params))
    return report


def _is_program_dir(path: Path) -> bool:
    """An earlier output of this stage (or an empty folder): the only thing compat replaces."""
    return (path / MODEL_FILE).exists() or not any(path.iterdir())


def _write_atomically(model_dir_in: Path, model_dir_out: Path, model: bytes, params: bytes) -> None:
    try:
        with publishing(model_dir_out, replace_if=_is_program_dir) as staging:
            for item in model_dir_in.iterdir():
                if item.name in (MODEL_FILE, PARAMS_FILE) or not item.is_file():
                    continue
                shutil.copy2(item, staging / item.name)
            (staging / MODEL_FILE).write_bytes(model)
            (staging / PARAMS_FILE).write_bytes(params)
    except OSError as exc:
        raise ExportError(f"cannot write compat output to {model_dir_out}: {exc}") from exc
