"""Compat passes about tensor shapes: missing XShape outputs and 0-D tensors."""
from __future__ import annotations

from typing import List, Sequence

from export.compat.desc import (
    AttrType, ProgramDesc, VarType, add_tensor_var, find_var, get_attr, io_map, iter_ops, set_attr, set_io,
    unique_name,
)

# Ops that get an XShape back: the flatten ops (opt segfaults without it) and reshape2 (opt aborts
# in `OpDesc::Output` without it; Paddle's jit.save keeps it, programs re-saved after PTQ may not).
# NOT transpose2 (nor squeeze2 / unsqueeze2, which convert fine without): Lite's shuffle_channel
# fuser matches reshape2 -> transpose2(0,2,1,..) -> reshape2 only when all three have XShape, and
# then also fuses patterns that are no channel shuffle (Mask-RT-DETR's deformable attention:
# wrong shapes, run() crashes; measured). Paddle 3 saves transpose2 without XShape, which keeps
# that fuser off.
XSHAPE_OPS = ("flatten_contiguous_range", "flatten2", "reshape2")


def add_missing_xshape(program: ProgramDesc, op_types: Sequence[str] = XSHAPE_OPS) -> List[str]:
    """Give flatten / reshape2 ops without an `XShape` output a dummy one (+ var desc).

    Paddle 3.x inference saves drop XShape (only training needs it). Lite 2.13 assumes it exists:
    flatten_contiguous_range followed by matmul_v2 / fc makes opt segfault on x86 with no
    message, and a reshape2 without XShape makes opt abort (`op_desc.cc:63 Output Check failed`).
    The var's dims are [0] + input dims, as Paddle wrote them. See XSHAPE_OPS for why transpose2
    is left alone.
    """
    changes = []
    for block_idx, op in iter_ops(program):
        if op.type not in op_types or io_map(op.outputs).get("XShape"):
            continue
        x_name = io_map(op.inputs)["X"][0]
        out_name = io_map(op.outputs)["Out"][0]
        x_var = find_var(program, x_name, block_idx)
        dtype = x_var.type.dense_tensor.tensor.data_type if x_var is not None else VarType.FP32
        dims = [0] + (list(x_var.type.dense_tensor.tensor.dims) if x_var is not None else [])
        xshape = unique_name(program, f"{out_name}.xshape")
        add_tensor_var(program, block_idx, xshape, dtype, dims)
        set_io(op.outputs, "XShape", [xshape])
        changes.append(f"{op.type} -> {out_name}: added XShape output {xshape}")
    return changes


_SHAPE_ATTR_OPS = ("fill_constant", "assign_value", "gaussian_random", "uniform_random")


def zero_dim_to_one_dim(program: ProgramDesc) -> List[str]:
    """0-D tensors (shape [], Paddle >= 2.5) -> shape [1].

    Lite 2.13 has no real 0-D tensors: `fill_constant` with `shape=[]` aborts at run time
    (`no valid out_shape`; it feeds `tile` / elementwise ops in Paddle 3.x programs). A [1] tensor
    broadcasts exactly like a scalar, so constant ops with `shape=[]` get `shape=[1]`, and 0-D
    var descs become [1]. Other ops Lite already computes as [1] (reductions: see
    `reduce_empty_dim_all`). 0-D *parameters* are handled by `zero_dim_params_to_one_dim`.
    A model output that Paddle returns as 0-D comes back from Lite as shape [1].
    """
    changes = []
    for _, op in iter_ops(program):
        if op.type not in _SHAPE_ATTR_OPS:
            continue
        if io_map(op.inputs).get("ShapeTensor") or io_map(op.inputs).get("ShapeTensorList"):
            continue
        shape = get_attr(op, "shape")
        if shape is None:
            continue
        values = shape.longs if shape.type == AttrType.LONGS else shape.ints
        if len(values) == 0:
            set_attr(op, "shape", shape.type, [1])
            changes.append(f"{op.type} -> {op.outputs[0].arguments[0]}: shape [] -> [1]")
    for block in program.blocks:
        for var in block.vars:
            if var.type.type == VarType.DENSE_TENSOR and len(var.type.dense_tensor.tensor.dims) == 0:
                var.type.dense_tensor.tensor.dims.append(1)
                changes.append(f"var {var.name}: dims [] -> [1]")
    return changes
