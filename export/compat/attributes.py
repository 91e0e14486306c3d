"""Compat passes that rewrite op attributes Paddle 3.x saves in a form Paddle Lite 2.13 cannot read."""
from __future__ import annotations

from typing import List

from export.compat.desc import AttrType, ProgramDesc, VarType, find_var, get_attr, io_map, iter_ops, set_attr

# Lite 2.13's assign_value / set_value read typed value lists (Paddle <= 2.5's attributes).
# dtype -> (attribute name, attribute type, value converter). bool_values is INTS in Lite.
_TYPED_VALUE_ATTRS = {
    VarType.FP32: ("fp32_values", AttrType.FLOATS, float),
    VarType.INT32: ("int32_values", AttrType.INTS, int),
    VarType.INT64: ("int64_values", AttrType.LONGS, int),
    VarType.BOOL: ("bool_values", AttrType.INTS, lambda v: int(bool(v))),
    VarType.FP64: ("fp64_values", AttrType.FLOAT64S, float),
    VarType.FP16: ("fp16_values", AttrType.FLOATS, float),
}
_SCALAR_OPS = ("assign_value", "set_value")


def _scalar_value(scalar):
    """The Python value held by a `framework_pb2.Scalar`."""
    kind = scalar.type
    if kind == scalar.BOOLEAN:
        return scalar.b
    if kind == scalar.LONG:
        return scalar.i
    if kind == scalar.FLOAT64:
        return scalar.r
    raise ValueError(f"complex Scalar values are not supported by Paddle Lite (Scalar type {kind})")


def scalars_to_typed_lists(program: ProgramDesc) -> List[str]:
    """assign_value / set_value `values` (attribute type SCALARS) -> fp32_values / int32_values / ...

    Paddle 3.x stores the constants as SCALARS (attribute type 17), which Lite 2.13 does not know:
    assign_value loads with no values and fails its shape check at run time
    (`op_->CheckShape()`); set_value runs but never writes its constant (silently wrong output).
    The typed list is added *next to* `values`: Lite 2.13rc0 ignores the SCALARS attribute
    (measured: opt for x86 and arm and the x86 run succeed with both present), and keeping it
    leaves the rewritten program runnable by Paddle Inference, which needs `values`.
    """
    changes = []
    for _, op in iter_ops(program):
        if op.type not in _SCALAR_OPS:
            continue
        values = get_attr(op, "values")
        if values is None or values.type != AttrType.SCALARS:
            continue
        dtype_attr = get_attr(op, "dtype")
        dtype = dtype_attr.i if dtype_attr is not None else VarType.FP32
        if dtype not in _TYPED_VALUE_ATTRS:
            raise ValueError(f"{op.type} with dtype {VarType.Type.Name(dtype)} has no typed value list in Paddle Lite")
        name, attr_type, convert = _TYPED_VALUE_ATTRS[dtype]
        typed = [convert(_scalar_value(s)) for s in values.scalars]
        set_attr(op, name, attr_type, typed)
        out = op.outputs[0].arguments[0] if op.outputs and op.outputs[0].arguments else "?"
        changes.append(f"{op.type} -> {out}: {len(typed)} SCALARS values -> {name}")
    return changes


def swish_beta(program: ProgramDesc) -> List[str]:
    """swish without `beta` -> beta = 1.0 (Lite aborts: `No attributes called beta found for swish`).

    Paddle 3.x dropped the attribute because swish is always x * sigmoid(x) there.
    """
    changes = []
    for _, op in iter_ops(program):
        if op.type == "swish" and get_attr(op, "beta") is None:
            set_attr(op, "beta", AttrType.FLOAT, 1.0)
            changes.append(f"swish -> {op.outputs[0].arguments[0]}: added beta=1.0")
    return changes


_REDUCE_OPS = {"reduce_any", "reduce_all", "reduce_sum", "reduce_mean", "reduce_max", "reduce_min", "reduce_prod"}


def reduce_dim_ints(program: ProgramDesc) -> List[str]:
    """reduce_* `dim` saved as LONGS -> INTS (Lite aborts: `required type is INTS`).

    Paddle 3.x saves reduce_any / reduce_all axes as int64 lists; Lite reads every reduce op's
    `dim` as a list of int32.
    """
    changes = []
    for _, op in iter_ops(program):
        if op.type not in _REDUCE_OPS:
            continue
        dim = get_attr(op, "dim")
        if dim is None or dim.type != AttrType.LONGS:
            continue
        axes = [int(v) for v in dim.longs]
        set_attr(op, "dim", AttrType.INTS, axes)
        changes.append(f"{op.type} -> {op.outputs[0].arguments[0]}: dim {axes} LONGS -> INTS")
    return changes


def reduce_empty_dim_all(program: ProgramDesc) -> List[str]:
    """reduce_* with an empty `dim` and `reduce_all=False` -> `reduce_all=True`, `dim` = every axis.

    Paddle 3.x saves `x.sum()` this way (an empty axis list means "all axes" there). Lite 2.13
    reads it as "reduce nothing" and its x86 reduce_sum kernel segfaults at run time (measured).
    """
    changes = []
    for block_idx, op in iter_ops(program):
        if op.type not in _REDUCE_OPS:
            continue
        dim, reduce_all = get_attr(op, "dim"), get_attr(op, "reduce_all")
        if dim is None or len(dim.ints) or len(dim.longs) or (reduce_all is not None and reduce_all.b):
            continue
        x_var = find_var(program, (io_map(op.inputs).get("X") or [""])[0], block_idx)
        rank = len(x_var.type.dense_tensor.tensor.dims) if x_var is not None else 0
        set_attr(op, "dim", AttrType.INTS, list(range(rank)))
        set_attr(op, "reduce_all", AttrType.BOOLEAN, True)
        changes.append(f"{op.type} -> {op.outputs[0].arguments[0]}: empty dim -> reduce_all over {rank} axes")
    return changes
