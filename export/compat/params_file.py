"""Read and write a combined `inference.pdiparams` file without going through Paddle.

Why not `paddle.static.load_inference_model` + `save_inference_model`: a Paddle round trip
re-serialises the program and drops attributes the compat passes add (the typed value lists), and
it needs a full executor. The file format is simple and stable, so the passes edit it directly.

Format (Paddle's `SerializeToStream` of a DenseTensor, one record per persistable var, records in
sorted var-name order, which is also the order Paddle Lite reads them in):
    uint32 version (0) | uint64 lod_level | lod_level x (uint64 nbytes, nbytes of size_t offsets)
    uint32 tensor version (0) | int32 desc_size | VarType.TensorDesc protobuf | raw little-endian data
"""
from __future__ import annotations

import struct
from collections import OrderedDict
from pathlib import Path
from typing import Dict, List

import numpy as np
from paddle.base.proto import framework_pb2 as fp

VarType = fp.VarType

NUMPY_DTYPES = {
    VarType.BOOL: np.bool_, VarType.INT8: np.int8, VarType.UINT8: np.uint8, VarType.INT16: np.int16,
    VarType.INT32: np.int32, VarType.INT64: np.int64, VarType.FP16: np.float16,
    VarType.FP32: np.float32, VarType.FP64: np.float64, VarType.BF16: np.uint16,
}


class ParamsFormatError(ValueError):
    """The params file does not hold the tensors the program says it should."""


def read_combined_params(path: Path, names: List[str]) -> "OrderedDict[str, np.ndarray]":
    """Read the tensors of a combined params file; `names` in file order (sorted persistable names)."""
    data = Path(path).read_bytes() if Path(path).exists() else b""
    params: "OrderedDict[str, np.ndarray]" = OrderedDict()
    offset = 0
    for name in names:
        try:
            (_version,) = struct.unpack_from("<I", data, offset)
            (lod_level,) = struct.unpack_from("<Q", data, offset + 4)
            offset += 12
            for _ in range(lod_level):
                (nbytes,) = struct.unpack_from("<Q", data, offset)
                offset += 8 + nbytes
            (_tensor_version,) = struct.unpack_from("<I", data, offset)
            (desc_size,) = struct.unpack_from("<i", data, offset + 4)
            offset += 8
        except struct.error as exc:
            raise ParamsFormatError(f"{path}: file ends before parameter {name!r}") from exc
        desc = VarType.TensorDesc()
        desc.ParseFromString(data[offset:offset + desc_size])
        offset += desc_size
        if desc.data_type not in NUMPY_DTYPES:
            raise ParamsFormatError(f"{path}: parameter {name!r} has unsupported dtype {desc.data_type}")
        dtype = np.dtype(NUMPY_DTYPES[desc.data_type])
        count = int(np.prod(desc.dims)) if len(desc.dims) else 1
        nbytes = count * dtype.itemsize
        if offset + nbytes > len(data):
            raise ParamsFormatError(f"{path}: parameter {name!r} is truncated")
        params[name] = np.frombuffer(data, dtype, count, offset).reshape(list(desc.dims)).copy()
        offset += nbytes
    if offset != len(data):
        raise ParamsFormatError(
            f"{path}: {len(data) - offset} bytes left after the {len(names)} parameters the program declares"
        )
    return params


def _paddle_dtype(array: np.ndarray) -> int:
    for code, np_type in NUMPY_DTYPES.items():
        if code != VarType.BF16 and array.dtype == np.dtype(np_type):
            return code
    raise ParamsFormatError(f"cannot store numpy dtype {array.dtype} in a params file")


def combined_params_bytes(params: Dict[str, np.ndarray]) -> bytes:
    """Serialise tensors in sorted-name order, the order Paddle and Paddle Lite read them in."""
    chunks = []
    for name in sorted(params):
        array = np.ascontiguousarray(params[name])
        desc = VarType.TensorDesc()
        desc.data_type = _paddle_dtype(array)
        desc.dims.extend(array.shape)
        desc_bytes = desc.SerializeToString()
        chunks.append(struct.pack("<IQ", 0, 0))
        chunks.append(struct.pack("<Ii", 0, len(desc_bytes)))
        chunks.append(desc_bytes)
        chunks.append(array.astype(array.dtype.newbyteorder("<"), copy=False).tobytes())
    return b"".join(chunks)
