"""Load PaddleDetection weights into our networks, checking every key and shape.

Our networks use PaddleDetection's parameter names exactly (no prefix), so a `.pdparams` written by
PaddleDetection / PaddleX training loads without renaming. Unlike PaddleDetection's own
`load_pretrain_weight` (which silently keeps initial values for missing keys), loading here is
strict by default: a missing, unexpected or mis-shaped key is a `ModelError` naming the keys.

The TSV layout files in tests/data/ppdet_params/ hold one `name<TAB>shape<TAB>dtype` line per
state_dict entry (shape comma-separated, empty for a 0-D entry).
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Dict, List, Mapping, Sequence, Tuple, Union

import numpy as np

from edge.errors import ModelError

logger = logging.getLogger(__name__)

Layout = List[Tuple[str, Tuple[int, ...]]]
_SHOWN_KEYS = 5  # how many offending keys a message names before giving the count


def _as_array(value: Any) -> np.ndarray:
    """A parameter value from paddle.load (Tensor or ndarray) as a numpy array."""
    if isinstance(value, np.ndarray):
        return value
    if hasattr(value, "numpy"):
        return value.numpy()
    return np.asarray(value)


def _numpy_dtype(tensor) -> np.dtype:
    """numpy dtype of a paddle Tensor without copying it (str(dtype) is e.g. 'paddle.float32')."""
    return np.dtype(str(tensor.dtype).split(".")[-1])


def _name_keys(keys: Sequence[str]) -> str:
    keys = sorted(keys)
    shown = ", ".join(keys[:_SHOWN_KEYS])
    more = f" (and {len(keys) - _SHOWN_KEYS} more)" if len(keys) > _SHOWN_KEYS else ""
    return f"{len(keys)}: {shown}{more}"


def read_state(source: Union[str, Path, Mapping[str, Any]]) -> Tuple[Dict[str, np.ndarray], str]:
    """Read a `.pdparams` file or a state dict; returns (name -> array, description of the source)."""
    if isinstance(source, Mapping):
        return {str(k): _as_array(v) for k, v in source.items()}, "the given state dict"
    path = Path(source)
    if not path.is_file():
        raise ModelError(f"weights file {path} does not exist; pass the path of a PaddleDetection .pdparams file")
    import paddle  # late: export/__init__ must have set the PIR flag first

    try:
        raw = paddle.load(str(path), return_numpy=True)
    except Exception as exc:  # paddle raises many types for a corrupt file
        raise ModelError(f"cannot read weights file {path}: {exc}; is it a .pdparams file saved by paddle.save?") from None
    if not isinstance(raw, Mapping):
        raise ModelError(f"weights file {path} holds a {type(raw).__name__}, not a state dict of named parameters")
    return {str(k): _as_array(v) for k, v in raw.items()}, str(path)


def state_dict_layout(layer) -> Layout:
    """[(name, shape)] of `layer.state_dict()`, in state_dict order."""
    return [(name, tuple(int(d) for d in tensor.shape)) for name, tensor in layer.state_dict().items()]


def read_layout_tsv(path: Union[str, Path]) -> Layout:
    """[(name, shape)] from a `name<TAB>comma-shape<TAB>dtype` file (tests/data/ppdet_params/)."""
    layout: Layout = []
    for number, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        fields = line.split("\t")
        if len(fields) < 2:
            raise ModelError(f"{path}:{number}: expected 'name<TAB>shape<TAB>dtype', got {line!r}")
        shape = tuple(int(d) for d in fields[1].split(",") if d.strip())
        layout.append((fields[0], shape))
    return layout


def load_weights(layer, source: Union[str, Path, Mapping[str, Any]], strict: bool = True) -> None:
    """Load `source` (a `.pdparams` path or a state dict) into `layer` by exact PaddleDetection key names.

    Every shape is checked. With `strict`, missing and unexpected keys are errors too; without it
    they are logged and the missing parameters keep their current values. Mis-shaped keys are
    always errors (nothing is loaded then).
    """
    state, where = read_state(source)
    own = layer.state_dict()
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    mis_shaped = [
        f"{k} {list(state[k].shape)} (network expects {list(own[k].shape)})"
        for k in own
        if k in state and tuple(state[k].shape) != tuple(own[k].shape)
    ]
    problems = []
    if mis_shaped:
        problems.append(f"mis-shaped keys {_name_keys(mis_shaped)}")
    if strict and missing:
        problems.append(f"keys missing from the weights {_name_keys(missing)}")
    if strict and unexpected:
        problems.append(f"unexpected keys in the weights {_name_keys(unexpected)}")
    if problems:
        raise ModelError(
            f"weights in {where} do not fit network {type(layer).__name__}: " + "; ".join(problems)
            + ". Check that the weights belong to this model (not another architecture or an EMA/optimizer"
            " file such as .pdopt), and that --num-classes matches the number of classes they were trained on."
        )
    if missing:
        logger.warning("weights in %s lack %s; they keep their initial values", where, _name_keys(missing))
    if unexpected:
        logger.warning("weights in %s have %s; they are ignored", where, _name_keys(unexpected))
    to_load = {}
    for k, tensor in own.items():
        if k in state:
            to_load[k] = state[k].astype(_numpy_dtype(tensor), copy=False)
    layer.set_state_dict(to_load)
    logger.info("loaded %d weights from %s into %s", len(to_load), where, type(layer).__name__)
