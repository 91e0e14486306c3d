"""Compat passes that replace ops Paddle Lite 2.13 has no kernel for with equivalent ones."""
from __future__ import annotations

from typing import List

from export.compat.desc import (
    AttrType, ProgramDesc, VarType, find_var, get_attr, io_map, iter_ops, remove_attr, set_attr, var_dtype,
)


def _rank(program: ProgramDesc, name: str, block_idx: int) -> int:
    var = find_var(program, name, block_idx)
    return len(var.type.dense_tensor.tensor.dims) if var is not None else -1


def bmm_to_matmul_v2(program: ProgramDesc) -> List[str]:
    """bmm -> matmul_v2 (trans_x = trans_y = False): Lite has no bmm kernel (`No kernels found for bmm`).

    bmm is a batched [B,M,K] x [B,K,N] product, which is exactly matmul_v2 on rank-3 inputs.
    """
    changes = []
    for _, op in iter_ops(program):
        if op.type != "bmm":
            continue
        op.type = "matmul_v2"
        set_attr(op, "trans_x", AttrType.BOOLEAN, False)
        set_attr(op, "trans_y", AttrType.BOOLEAN, False)
        changes.append(f"bmm -> {op.outputs[0].arguments[0]}: now matmul_v2")
    return changes


def bool_mul_to_logical_and(program: ProgramDesc) -> List[str]:
    """elementwise_mul of two BOOL tensors -> logical_and.

    Lite's elementwise_mul has float/int kernels only; on bool inputs opt aborts looking for a
    `calib` (cast) kernel from bool. For booleans a * b is a AND b.
    """
    changes = []
    for block_idx, op in iter_ops(program):
        if op.type != "elementwise_mul":
            continue
        inputs = io_map(op.inputs)
        x, y = inputs.get("X", [None])[0], inputs.get("Y", [None])[0]
        if var_dtype(program, x, block_idx) != VarType.BOOL or var_dtype(program, y, block_idx) != VarType.BOOL:
            continue
        axis = get_attr(op, "axis")
        if axis is not None and axis.i != -1 and _rank(program, x, block_idx) != _rank(program, y, block_idx):
            continue  # Paddle's old axis-aligned broadcast; logical_and would broadcast differently
        op.type = "logical_and"
        remove_attr(op, "axis")  # logical_and broadcasts numpy-style, it has no axis attribute
        changes.append(f"elementwise_mul({x}, {y}) -> logical_and")
    return changes
