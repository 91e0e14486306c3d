"""Compat passes: each problem is shown on a real Paddle 3.0.0 legacy save to break opt or Lite
without its pass, and to convert and match Paddle Inference with all passes."""
from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, List

import export  # noqa: F401  (before paddle)
import numpy as np
import pytest
from paddle.base.proto import framework_pb2 as fp

import programs
from edge.errors import ExportError
from export.compat import apply_compat_passes, pass_names, pending_rewrites
from export.compat.attributes import scalars_to_typed_lists
from export.compat.desc import get_attr, persistable_names, read_program
from export.compat.params_file import combined_params_bytes, read_combined_params
from export.compat.shapes import add_missing_xshape
from export.optimize import nb_kernels, optimize

TOLERANCE = 1e-5


@dataclass
class Case:
    layer: Callable
    input_shape: List[int]
    pass_name: str
    fails_in: str  # "opt": the x86 conversion fails; "run": Lite's run() fails; "wrong": Lite returns wrong values
    failure: str  # regex found in the opt error / Lite run log without the pass


CASES = {
    "assign_value_scalars": Case(programs.AssignConstant, [2, 4], "scalars_to_typed_lists", "run", r"CheckShape"),
    "set_value_scalars": Case(programs.SetValue, [2, 4], "scalars_to_typed_lists", "wrong", r""),
    "bool_parameter": Case(programs.BoolBuffer, [2, 4], "bool_params_to_fp32", "opt", r"unknown type 0.*|BOOL"),
    "swish_without_beta": Case(programs.Swish, [1, 4], "swish_beta", "opt", r"No attributes called beta found for swish"),
    "reduce_any_longs": Case(programs.AnyPositive, [2, 4], "reduce_dim_ints", "opt", r"required type is INTS"),
    "reduce_sum_empty_dim": Case(programs.SumAll, [2, 4], "reduce_empty_dim_all", "run", r""),
    "bmm": Case(programs.Bmm, [2, 3, 4], "bmm_to_matmul_v2", "opt", r"No kernels found for bmm"),
    "bool_mul": Case(programs.BoolMul, [2, 4], "bool_mul_to_logical_and", "opt", r"elementwise_mul"),
    "flatten_without_xshape": Case(programs.FlattenLinear, [1, 4, 4, 4], "add_missing_xshape", "opt", r"SIGSEGV"),
    "zero_dim_fill_constant": Case(programs.ZeroDimConstant, [2, 4], "zero_dim_to_one_dim", "run", r"no valid out_shape"),
}


def _input(shape) -> np.ndarray:
    return np.random.RandomState(0).rand(*shape).astype("float32")


@pytest.mark.parametrize("case_name", sorted(CASES))
def test_pass_is_needed_and_sufficient(case_name: str, tmp_path: Path):
    case = CASES[case_name]
    source = programs.save_legacy(case.layer(), tmp_path / "source", case.input_shape)
    x = _input(case.input_shape)
    reference = programs.run_paddle(source, x)
    # The problem really is in what Paddle 3.0.0 saves.
    assert case.pass_name in pending_rewrites(source)

    # Every other pass, not this one: opt or Lite fails.
    others = [name for name in pass_names() if name != case.pass_name]
    apply_compat_passes(source, tmp_path / "without", passes=others)
    if case.fails_in == "opt":
        with pytest.raises(ExportError) as failure:
            optimize(tmp_path / "without", tmp_path / "out" / "without", target="x86")
        assert re.search(case.failure, str(failure.value)), str(failure.value)
        assert list((tmp_path / "out").iterdir()) == [], "a failed conversion left files behind"
    elif case.fails_in == "run":
        nb = optimize(tmp_path / "without", tmp_path / "out" / "without", target="x86")
        run = programs.run_lite(nb, x)
        assert run.returncode < 0, f"Lite ran {case_name} without {case.pass_name} (exit {run.returncode})"
        assert re.search(case.failure, run.log), run.log[-2000:]
    else:  # silently wrong: set_value's constant is never written
        run = programs.run_lite(optimize(tmp_path / "without", tmp_path / "out" / "without", target="x86"), x)
        assert run.ok, run.log[-2000:]
        assert programs.max_abs_diff(reference, run.outputs) > 0.1

    # All passes: converts, runs, and matches Paddle Inference on the original program.
    report = apply_compat_passes(source, tmp_path / "fixed")
    assert report.changes[case.pass_name]
    nb = optimize(tmp_path / "fixed", tmp_path / "out" / "fixed", target="x86")
    run = programs.run_lite(nb, x)
    assert run.ok, run.log[-2000:]
    assert programs.max_abs_diff(reference, run.outputs) <= TOLERANCE


def test_transpose2_gets_no_xshape_because_lite_would_misfuse_it(tmp_path: Path):
    """Why add_missing_xshape is limited to flatten ops: given XShape, transpose2 completes Lite's
    shuffle_channel pattern and the deformable-attention reshapes are fused into a wrong
    shuffle_channel (Lite then crashes: `Wrong broadcast type` abort or SIGSEGV, measured)."""
    source = programs.save_legacy(programs.DeformableWeights(), tmp_path / "source", [1, 30, 96])
    x = _input([1, 30, 96])
    reference = programs.run_paddle(source, x)
    report = apply_compat_passes(source, tmp_path / "fixed")
    assert not report.changes["add_missing_xshape"]
    run = programs.run_lite(optimize(tmp_path / "fixed", tmp_path / "out" / "fixed", target="x86"), x)
    assert run.ok, run.log[-2000:]
    assert programs.max_abs_diff(reference, run.outputs) <= TOLERANCE

    program = read_program(source / "inference.pdmodel")
    assert add_missing_xshape(program, op_types=("transpose2",))
    misfused = tmp_path / "misfused"
    misfused.mkdir()
    (misfused / "inference.pdmodel").write_bytes(program.SerializeToString())
    nb = optimize(misfused, tmp_path / "out" / "misfused", target="x86")
    assert "shuffle_channel" in {k.op_type for k in nb_kernels(nb)}
    run = programs.run_lite(nb, x)
    assert run.returncode < 0, f"misfused program did not crash: exit {run.returncode}"


def test_reshape2_without_xshape_gets_one(tmp_path: Path):
    """Paddle's jit.save keeps reshape2's XShape, so this program is made by removing it from a
    real save (programs re-saved after PTQ can lack it). Without the pass opt aborts."""
    source = programs.save_legacy(programs.ReshapeLinear(), tmp_path / "source", [1, 4, 4, 4])
    x = _input([1, 4, 4, 4])
    reference = programs.run_paddle(source, x)
    program = read_program(source / "inference.pdmodel")
    stripped = 0
    for op in program.blocks[0].ops:
        kept = [slot for slot in op.outputs if not (op.type == "reshape2" and slot.parameter == "XShape")]
        if len(kept) != len(op.outputs):
            copies = [fp.OpDesc.Var() for _ in kept]
            for copy, slot in zip(copies, kept):
                copy.CopyFrom(slot)
            del op.outputs[:]
            op.outputs.extend(copies)
            stripped += 1
    assert stripped == 1
    no_xshape = tmp_path / "no_xshape"
    no_xshape.mkdir()
    (no_xshape / "inference.pdmodel").write_bytes(program.SerializeToString())
    (no_xshape / "inference.pdiparams").write_bytes((source / "inference.pdiparams").read_bytes())

    with pytest.raises(ExportError, match="SIGABRT"):
        optimize(no_xshape, tmp_path / "out" / "without", target="x86")
    report = apply_compat_passes(no_xshape, tmp_path / "fixed")
    assert any(line.startswith("reshape2") for line in report.changes["add_missing_xshape"])
    run = programs.run_lite(optimize(tmp_path / "fixed", tmp_path / "out" / "fixed", target="x86"), x)
    assert run.ok, run.log[-2000:]
    assert programs.max_abs_diff(reference, run.outputs) <= TOLERANCE


def test_zero_dim_parameter_becomes_one_dim(tmp_path: Path):
    """A 0-D parameter does NOT break Lite 2.13rc0 (measured: converts and matches without the
    pass); `zero_dim_params_to_one_dim` keeps the params file consistent with the [1] var desc."""
    source = programs.save_legacy(programs.ZeroDimParameter(), tmp_path / "source", [2, 4])
    x = _input([2, 4])
    reference = programs.run_paddle(source, x)
    report = apply_compat_passes(source, tmp_path / "fixed")
    assert report.changes["zero_dim_params_to_one_dim"]
    program = read_program(tmp_path / "fixed" / "inference.pdmodel")
    params = read_combined_params(tmp_path / "fixed" / "inference.pdiparams", persistable_names(program))
    assert [p.shape for p in params.values()] == [(1,)]
    run = programs.run_lite(optimize(tmp_path / "fixed", tmp_path / "fixed_x86", target="x86"), x)
    assert run.ok, run.log[-2000:]
    assert programs.max_abs_diff(reference, run.outputs) <= TOLERANCE


class AllProblems(programs.nn.Layer):
    """Every problem in one program, for the arm + x86 conversion check."""

    def __init__(self):
        super().__init__()
        self.flatten_linear = programs.FlattenLinear()
        self.valid = programs.BoolBuffer()

    def forward(self, x):
        y = self.flatten_linear(x)[:, :4]  # [1, 4]
        y = programs.Swish()(y) + programs.AssignConstant()(y) + programs.SetValue()(y)
        y = y + programs.BoolMul()(y) + programs.ZeroDimConstant()(y)[:1] + self.valid(y)
        z = programs.Bmm()(y.unsqueeze(0))  # [1, 1, 1]
        return y * z.reshape([1, 1]) + programs.AnyPositive()(y).unsqueeze(1) + programs.SumAll()(y)[:1]


def test_all_passes_together_convert_for_arm_and_x86(tmp_path: Path):
    source = programs.save_legacy(AllProblems(), tmp_path / "source", [1, 4, 4, 4])
    x = _input([1, 4, 4, 4])
    reference = programs.run_paddle(source, x)
    report = apply_compat_passes(source, tmp_path / "fixed")
    expected = set(pass_names()) - {"zero_dim_params_to_one_dim"}
    assert set(report.changed_passes) == expected, report.summary()
    assert optimize(tmp_path / "fixed", tmp_path / "out" / "arm", target="arm").stat().st_size > 0
    run = programs.run_lite(optimize(tmp_path / "fixed", tmp_path / "out" / "x86", target="x86"), x)
    assert run.ok, run.log[-2000:]
    assert programs.max_abs_diff(reference, run.outputs) <= TOLERANCE


def test_clean_program_is_left_alone_and_input_never_touched(tmp_path: Path):
    source = programs.save_legacy(programs.ConvRelu(), tmp_path / "source", [1, 3, 8, 8])
    (source / "inference.yml").write_text("mode: paddle\n")
    before = {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in source.iterdir()}
    report = apply_compat_passes(source, tmp_path / "out")
    assert report.changed_passes == [] and report.summary() == "compat: no rewrite needed"
    after = {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in source.iterdir()}
    assert after == before
    # Nothing to change: the program and params come out byte-identical, other files are copied.
    for name in ("inference.pdmodel", "inference.pdiparams", "inference.yml"):
        assert (tmp_path / "out" / name).read_bytes() == (source / name).read_bytes(), name
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == [], "staging directory left behind"


def test_params_file_round_trip_is_byte_identical(tmp_path: Path):
    source = programs.save_legacy(programs.FlattenLinear(), tmp_path / "source", [1, 4, 4, 4])
    program = read_program(source / "inference.pdmodel")
    params = read_combined_params(source / "inference.pdiparams", persistable_names(program))
    assert list(params) == persistable_names(program)  # bias "...b_0" sorts before weight "...w_0"
    assert [value.shape for value in params.values()] == [(5,), (64, 5)]
    assert combined_params_bytes(params) == (source / "inference.pdiparams").read_bytes()


def _hand_made_assign_value(dtype: int, scalars) -> fp.ProgramDesc:
    program = fp.ProgramDesc()
    block = program.blocks.add()
    block.idx, block.parent_idx = 0, -1
    op = block.ops.add()
    op.type = "assign_value"
    out = op.outputs.add()
    out.parameter, out.arguments[:] = "Out", ["c"]
    for name, attr_type, value in (("dtype", fp.AttrType.INT, dtype), ("shape", fp.AttrType.INTS, [len(scalars)])):
        attr = op.attrs.add()
        attr.name, attr.type = name, attr_type
        attr.i = value if attr_type == fp.AttrType.INT else 0
        if attr_type == fp.AttrType.INTS:
            attr.ints.extend(value)
    values = op.attrs.add()
    values.name, values.type = "values", fp.AttrType.SCALARS
    for kind, field, value in scalars:
        scalar = values.scalars.add()
        scalar.type = kind
        setattr(scalar, field, value)
    return program


@pytest.mark.parametrize("dtype, scalars, attr_name, expected", [
    (fp.VarType.INT64, [(fp.Scalar.LONG, "i", 7), (fp.Scalar.LONG, "i", -3)], "int64_values", [7, -3]),
    (fp.VarType.INT32, [(fp.Scalar.LONG, "i", 5)], "int32_values", [5]),
    (fp.VarType.BOOL, [(fp.Scalar.BOOLEAN, "b", True), (fp.Scalar.BOOLEAN, "b", False)], "bool_values", [1, 0]),
])
def test_scalars_of_other_dtypes_become_typed_lists(dtype, scalars, attr_name, expected):
    """Hand-made ProgramDescs: the Paddle programs above only produce FP32 constants."""
    program = _hand_made_assign_value(dtype, scalars)
    assert scalars_to_typed_lists(program)
    op = program.blocks[0].ops[0]
    attr = get_attr(op, attr_name)
    assert list(attr.longs if attr.type == fp.AttrType.LONGS else attr.ints) == expected
    assert get_attr(op, "values") is not None  # kept: Paddle Inference still needs it


def test_errors_name_the_input_and_the_way_out(tmp_path: Path):
    with pytest.raises(ExportError, match="does not exist"):
        apply_compat_passes(tmp_path / "missing", tmp_path / "out")
    pir = tmp_path / "pir"
    pir.mkdir()
    (pir / "inference.json").write_text("{}")
    with pytest.raises(ExportError, match="PIR inference.json"):
        apply_compat_passes(pir, tmp_path / "out")
    source = programs.save_legacy(programs.ConvRelu(), tmp_path / "source", [1, 3, 8, 8])
    with pytest.raises(ExportError, match="is \\(or contains\\) the input directory"):
        apply_compat_passes(source, source)
    with pytest.raises(ExportError, match="is \\(or contains\\) the input directory"):
        apply_compat_passes(source, tmp_path)
    unrelated = tmp_path / "documents"
    unrelated.mkdir()
    (unrelated / "notes.txt").write_text("keep me")
    with pytest.raises(ExportError, match="not an inference directory"):
        apply_compat_passes(source, unrelated)
    assert (unrelated / "notes.txt").read_text() == "keep me"
    no_params = tmp_path / "no_params"
    no_params.mkdir()
    (no_params / "inference.pdmodel").write_bytes((source / "inference.pdmodel").read_bytes())
    with pytest.raises(ExportError, match="no inference.pdiparams"):
        apply_compat_passes(no_params, tmp_path / "out")
    (no_params / "inference.pdiparams").write_bytes((source / "inference.pdiparams").read_bytes()[:50])
    with pytest.raises(ExportError, match="does not match"):
        apply_compat_passes(no_params, tmp_path / "out")
    corrupt = tmp_path / "corrupt"
    corrupt.mkdir()
    (corrupt / "inference.pdmodel").write_bytes(b"\xff\xfe not a protobuf" * 10)
    with pytest.raises(ExportError, match="not a readable Paddle program"):
        apply_compat_passes(corrupt, tmp_path / "out")
    with pytest.raises(ExportError, match="unknown compat pass"):
        apply_compat_passes(source, tmp_path / "out", passes=["no_such_pass"])
    assert not (tmp_path / "out").exists()


def test_previous_output_is_replaced(tmp_path: Path):
    source = programs.save_legacy(programs.Swish(), tmp_path / "source", [1, 4])
    first = apply_compat_passes(source, tmp_path / "out")
    (tmp_path / "out" / "stale.txt").write_text("from an older run")
    second = apply_compat_passes(source, tmp_path / "out")
    assert first.changes == second.changes and second.changed_passes == ["swish_beta"]
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["inference.pdiparams", "inference.pdmodel"]


@pytest.mark.slow
@pytest.mark.parametrize("network", ["PP-YOLOE_seg-S", "Mask-RT-DETR-S"])
def test_reference_graph_converts_for_arm_and_x86(network: str, tmp_path: Path):
    """The reference graph (control flow, bmm, BOOL mask, ...) of each network, saved by Paddle
    3.0.0, converts for arm and x86 after the compat passes, and the x86 .nb agrees with Paddle."""
    from export.networks.mask_rtdetr import export_mask_rtdetr
    from export.networks.ppyoloe_seg import export_ppyoloe_seg

    export_network = export_ppyoloe_seg if network == "PP-YOLOE_seg-S" else export_mask_rtdetr
    programs.paddle.seed(0)
    source = export_network(tmp_path / "source", graph="reference", num_classes=3, labels=["a", "b", "c"],
                            input_size=(160, 160), model_name=network)
    report = apply_compat_passes(source, tmp_path / "fixed")
    assert report.changed_passes, "the reference graph needed no rewrite: this test no longer tests anything"
    arm = optimize(tmp_path / "fixed", tmp_path / "out" / "arm", target="arm")
    assert any(k.op_type == "conv2d" and k.target == "arm" for k in nb_kernels(arm))
    x86 = optimize(tmp_path / "fixed", tmp_path / "out" / "x86", target="x86")

    rng = np.random.RandomState(0)
    feeds = {"im_shape": np.array([[160, 160]], "float32"), "image": rng.rand(1, 3, 160, 160).astype("float32"),
             "scale_factor": np.array([[1, 1]], "float32")}
    boxes, count, masks = programs.run_paddle(source, feeds)
    run = programs.run_lite(x86, feeds)
    assert run.ok, run.log[-2000:]
    lite_boxes, lite_count, lite_masks = run.outputs
    assert lite_count.tolist() == count.tolist()
    # Random weights give near-equal scores, whose order may swap between engines: match rows.
    distance = np.abs(boxes[:, None, :] - lite_boxes[None, :, :]).max(axis=2)
    match = np.empty(len(boxes), dtype=int)
    for row in range(len(boxes)):  # greedy: each Lite row used once (padding rows can be identical)
        match[row] = int(np.argmin(distance[row]))
        distance[:, match[row]] = np.inf
        distance[row, match[row]] = np.abs(boxes[row] - lite_boxes[match[row]]).max()
    assert distance[np.arange(len(boxes)), match].max() <= 1e-2
    assert lite_masks.shape == masks.shape and (lite_masks[match] == masks).mean() >= 0.99
