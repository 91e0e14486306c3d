"""Small helpers for reading and editing a legacy Paddle `ProgramDesc` protobuf.

The passes in this package edit `paddle.base.proto.framework_pb2.ProgramDesc` objects in place.
These helpers keep the protobuf plumbing (attribute types, var descs, unique names) out of the
passes so each pass reads as the rewrite it performs.
"""
from __future__ import annotations

from pathlib import Path
from typing import Dict, Iterator, List, Optional, Sequence, Tuple

from paddle.base.proto import framework_pb2 as fp

ProgramDesc = fp.ProgramDesc
OpDesc = fp.OpDesc
VarDesc = fp.VarDesc
AttrType = fp.AttrType
VarType = fp.VarType


def read_program(path: Path) -> ProgramDesc:
    program = fp.ProgramDesc()
    program.ParseFromString(Path(path).read_bytes())
    return program


def program_bytes(program: ProgramDesc) -> bytes:
    return program.SerializeToString()


def iter_ops(program: ProgramDesc) -> Iterator[Tuple[int, OpDesc]]:
    """Every op of every block (sub-blocks of control flow included), with its block index."""
    for block in program.blocks:
        for op in block.ops:
            yield block.idx, op


def find_var(program: ProgramDesc, name: str, block_idx: int = 0) -> Optional[VarDesc]:
    """Look a var up in `block_idx` and then in its parent blocks, as Paddle's scoping does."""
    idx = block_idx
    while idx >= 0:
        block = program.blocks[idx]
        for var in block.vars:
            if var.name == name:
                return var
        idx = block.parent_idx if block.parent_idx != idx else -1
    return None


def var_dtype(program: ProgramDesc, name: str, block_idx: int = 0) -> Optional[int]:
    var = find_var(program, name, block_idx)
    if var is None or var.type.type != VarType.DENSE_TENSOR:
        return None
    return var.type.dense_tensor.tensor.data_type


def is_tensor_var(var: VarDesc) -> bool:
    return var.type.type == VarType.DENSE_TENSOR


def persistable_names(program: ProgramDesc) -> List[str]:
    """Names of the parameters stored in a combined `.pdiparams`, in the file's (sorted) order."""
    return sorted(v.name for v in program.blocks[0].vars if v.persistable and is_tensor_var(v))


def add_tensor_var(program: ProgramDesc, block_idx: int, name: str, dtype: int, dims: Sequence[int]) -> VarDesc:
    var = program.blocks[block_idx].vars.add()
    var.name = name
    var.type.type = VarType.DENSE_TENSOR
    var.type.dense_tensor.tensor.data_type = dtype
    var.type.dense_tensor.tensor.dims.extend(list(dims))
    var.persistable = False
    return var


def unique_name(program: ProgramDesc, base: str) -> str:
    taken = {v.name for block in program.blocks for v in block.vars}
    if base not in taken:
        return base
    n = 1
    while f"{base}_{n}" in taken:
        n += 1
    return f"{base}_{n}"


def get_attr(op: OpDesc, name: str) -> Optional[fp.OpDesc.Attr]:
    for attr in op.attrs:
        if attr.name == name:
            return attr
    return None


def remove_attr(op: OpDesc, name: str) -> None:
    for i, attr in enumerate(op.attrs):
        if attr.name == name:
            del op.attrs[i]
            return


def set_attr(op: OpDesc, name: str, attr_type: int, value) -> None:
    """Set (replace) an attribute with an explicit protobuf attribute type."""
    remove_attr(op, name)
    attr = op.attrs.add()
    attr.name = name
    attr.type = attr_type
    field = {
        AttrType.INT: "i", AttrType.FLOAT: "f", AttrType.STRING: "s", AttrType.BOOLEAN: "b",
        AttrType.LONG: "l", AttrType.FLOAT64: "float64",
    }.get(attr_type)
    if field is not None:
        setattr(attr, field, value)
        return
    repeated = {
        AttrType.INTS: attr.ints, AttrType.FLOATS: attr.floats, AttrType.STRINGS: attr.strings,
        AttrType.BOOLEANS: attr.bools, AttrType.LONGS: attr.longs, AttrType.FLOAT64S: attr.float64s,
    }.get(attr_type)
    if repeated is None:
        raise ValueError(f"set_attr does not handle attribute type {attr_type}")
    repeated.extend(list(value))


def io_map(slots) -> Dict[str, List[str]]:
    """`{parameter: [arguments]}` for an op's inputs or outputs."""
    return {slot.parameter: list(slot.arguments) for slot in slots}


def set_io(slots, parameter: str, arguments: Sequence[str]) -> None:
    for slot in slots:
        if slot.parameter == parameter:
            del slot.arguments[:]
            slot.arguments.extend(arguments)
            return
    slot = slots.add()
    slot.parameter = parameter
    slot.arguments.extend(arguments)


def rename_input(program: ProgramDesc, old: str, new: str) -> int:
    """Make every op that reads `old` read `new` instead; returns how many op inputs changed."""
    changed = 0
    for _, op in iter_ops(program):
        for slot in op.inputs:
            for i, arg in enumerate(slot.arguments):
                if arg == old:
                    slot.arguments[i] = new
                    changed += 1
    return changed


def new_op(op_type: str, inputs: Dict[str, Sequence[str]], outputs: Dict[str, Sequence[str]]) -> OpDesc:
    op = fp.OpDesc()
    op.type = op_type
    for parameter, args in inputs.items():
        set_io(op.inputs, parameter, args)
    for parameter, args in outputs.items():
        set_io(op.outputs, parameter, args)
    return op


def insert_op(program: ProgramDesc, block_idx: int, index: int, op: OpDesc) -> None:
    """Insert `op` at position `index` of a block (protobuf repeated fields have no insert)."""
    ops = program.blocks[block_idx].ops
    tail = [fp.OpDesc() for _ in range(len(ops) - index)]
    for copy, original in zip(tail, ops[index:]):
        copy.CopyFrom(original)
    del ops[index:]
    ops.add().CopyFrom(op)
    for copy in tail:
        ops.add().CopyFrom(copy)
