"""Compat passes that need the parameters as well as the program."""
from __future__ import annotations

from typing import Dict, List

import numpy as np

from export.compat.desc import (
    AttrType, ProgramDesc, VarType, add_tensor_var, insert_op, new_op, rename_input, set_attr, unique_name,
)


def _first_non_feed_index(program: ProgramDesc) -> int:
    ops = program.blocks[0].ops
    index = 0
    while index < len(ops) and ops[index].type == "feed":
        index += 1
    return index


def bool_params_to_fp32(program: ProgramDesc, params: Dict[str, np.ndarray]) -> List[str]:
    """BOOL persistable parameters -> stored as FP32, with a `cast` to BOOL at the top of the graph.

    Lite 2.13 cannot load a BOOL tensor from a params file (`ConvertVarType unknown type 0`).
    The parameter keeps its name (so the params file keeps its order) but becomes FP32; a new
    `<name>.bool` var, produced by `cast`, replaces it as the input of every op that read it.
    """
    changes = []
    for var in program.blocks[0].vars:
        tensor = var.type.dense_tensor.tensor
        if not var.persistable or var.type.type != VarType.DENSE_TENSOR or tensor.data_type != VarType.BOOL:
            continue
        name = var.name
        if name not in params:
            raise ValueError(f"BOOL parameter {name!r} is declared by the program but missing from the params file")
        params[name] = params[name].astype(np.float32)
        tensor.data_type = VarType.FP32
        as_bool = unique_name(program, f"{name}.bool")
        add_tensor_var(program, 0, as_bool, VarType.BOOL, list(tensor.dims))
        readers = rename_input(program, name, as_bool)
        cast = new_op("cast", {"X": [name]}, {"Out": [as_bool]})
        set_attr(cast, "in_dtype", AttrType.INT, VarType.FP32)
        set_attr(cast, "out_dtype", AttrType.INT, VarType.BOOL)
        insert_op(program, 0, _first_non_feed_index(program), cast)
        changes.append(f"parameter {name} {list(tensor.dims)}: BOOL -> FP32 + cast to {as_bool} ({readers} readers)")
    return changes


def zero_dim_params_to_one_dim(program: ProgramDesc, params: Dict[str, np.ndarray]) -> List[str]:
    """0-D parameters -> shape [1] (Lite has no 0-D tensors; see `shapes.zero_dim_to_one_dim`)."""
    changes = []
    for name, value in params.items():
        if value.ndim == 0:
            params[name] = value.reshape([1])
            changes.append(f"parameter {name}: dims [] -> [1]")
    return changes
