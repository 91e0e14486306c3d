"""Seeded weights that both PaddleDetection and our networks can rebuild, described in a few hundred kB.

A full Mask-RT-DETR-S state dict is 58 MB; checking it in is out of the question. PaddleDetection's
own initial weights are mostly seeded random draws from a handful of initialisers (Kaiming normal,
Xavier uniform, constants such as zeros, ones or the focal-loss class prior, plus a few structured
tensors: the deformable-attention offset grid, the DFL projection). `describe` turns such a state dict
into a recipe: per tensor a constant, a normal or uniform distribution with the same mean and
spread, or (small non-constant tensors) the values themselves. `materialise` draws the tensors from
the recipe with numpy only, deterministically, so the harness (in PaddleDetection's venv) and the
project's tests (without PaddleDetection) get bit-identical weights.

Two variants:
- "plain": PaddleDetection's initialisation as described (BN identity statistics, zero heads).
- "perturbed": the same, with BN means/variances/gammas/betas, LayerNorm scales/shifts, every
  constant-initialised tensor (zero-initialised heads and offsets) and every bias perturbed, so that
  no layer is an identity or a zero and every parameter matters to the outputs. A recipe may carry
  "overrides" for this variant: tensors the harness calibrated on the sample image so that the
  outputs are not degenerate (Mask-RT-DETR: mask logits centred on 0, else every mask is all ones).

numpy only: imported by tools/ppdet_reference/make_reference.py (PaddleDetection's venv) and by the
project's tests.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Dict, Mapping, Union

import numpy as np

VARIANTS = ("plain", "perturbed")
VERBATIM_MAX = 1024  # non-constant tensors up to this many elements are stored as they are
_UNIFORM_RATIO = 1.05  # max |x - mean| <= sqrt(3) * std * this: the draws were uniform


def describe(state: Mapping[str, np.ndarray]) -> Dict[str, object]:
    """A recipe for `state` (name -> array): {"order": [...], "tensors": {name: entry}, "verbatim": {...}}."""
    tensors: Dict[str, dict] = {}
    verbatim: Dict[str, np.ndarray] = {}
    for name, value in state.items():
        value = np.asarray(value, dtype=np.float32)
        entry: dict = {"shape": list(value.shape)}
        flat = value.reshape(-1)
        if flat.size and np.all(flat == flat[0]):
            entry.update(kind="const", value=float(flat[0]))
        elif flat.size <= VERBATIM_MAX:
            entry.update(kind="verbatim")
            verbatim[name] = value
        else:
            mean, std = float(flat.mean()), float(flat.std())
            spread = float(np.abs(flat - mean).max())
            kind = "uniform" if spread <= np.sqrt(3.0) * std * _UNIFORM_RATIO else "normal"
            entry.update(kind=kind, mean=mean, std=std)
        tensors[name] = entry
    return {"order": list(state), "tensors": tensors, "verbatim": verbatim}


def save_recipe(recipe: Mapping[str, object], path: Union[str, Path]) -> None:
    """One .npz: the JSON description plus the verbatim arrays and the perturbed variant's overrides."""
    meta = {"order": recipe["order"], "tensors": recipe["tensors"]}
    arrays = {f"verbatim/{k}": v for k, v in recipe["verbatim"].items()}  # type: ignore[union-attr]
    arrays.update({f"override/{k}": v for k, v in recipe.get("overrides", {}).items()})  # type: ignore[union-attr]
    np.savez_compressed(path, recipe_json=np.array(json.dumps(meta)), **arrays)


def load_recipe(path: Union[str, Path]) -> Dict[str, object]:
    with np.load(path, allow_pickle=False) as data:
        meta = json.loads(str(data["recipe_json"]))
        verbatim = {k[len("verbatim/"):]: data[k] for k in data.files if k.startswith("verbatim/")}
        overrides = {k[len("override/"):]: data[k] for k in data.files if k.startswith("override/")}
    return {"order": meta["order"], "tensors": meta["tensors"], "verbatim": verbatim, "overrides": overrides}


def _draw(entry: Mapping, rng: np.random.Generator) -> np.ndarray:
    shape = tuple(entry["shape"])
    if entry["kind"] == "uniform":
        half = np.sqrt(3.0) * entry["std"]
        return rng.uniform(entry["mean"] - half, entry["mean"] + half, shape)
    return rng.normal(entry["mean"], entry["std"], shape)


def _is_bn(name: str, state_names) -> bool:
    """A batch-norm scale/shift: a sibling `_mean` exists."""
    stem = name.rsplit(".", 1)[0]
    return f"{stem}._mean" in state_names


def _perturb(name: str, value: np.ndarray, entry: Mapping, names, rng: np.random.Generator) -> np.ndarray:
    shape = value.shape
    if name.endswith("._variance"):
        return rng.uniform(0.5, 2.0, shape)
    if name.endswith("._mean"):
        return rng.normal(0.0, 0.1, shape)
    if name.endswith(".bias"):
        return value + rng.normal(0.0, 0.1, shape)
    if len(shape) == 1 and (name.endswith(".weight") and (_is_bn(name, names) or entry["kind"] == "const")):
        return value * rng.uniform(0.5, 1.5, shape)  # BN gammas, LayerNorm scales
    if entry["kind"] == "const":
        if len(shape) >= 2:  # zero-initialised weights (box head's last layer, offsets, attention weights)
            fan_in = int(np.prod(shape[1:])) if len(shape) == 4 else shape[0]
            return value + rng.normal(0.0, 0.5 / np.sqrt(fan_in), shape)
        return value + rng.normal(0.0, 0.1, shape)  # e.g. RepVgg alpha
    return value


def materialise(recipe: Mapping[str, object], variant: str = "plain", seed: int = 0) -> Dict[str, np.ndarray]:
    """name -> float32 array, in state-dict order; the same on every machine for the same arguments."""
    if variant not in VARIANTS:
        raise ValueError(f"unknown weights variant {variant!r}; choose one of {', '.join(VARIANTS)}")
    tensors = recipe["tensors"]  # type: ignore[index]
    verbatim = recipe["verbatim"]  # type: ignore[index]
    names = set(recipe["order"])  # type: ignore[arg-type]
    overrides = recipe.get("overrides", {})  # type: ignore[union-attr]
    state: Dict[str, np.ndarray] = {}
    for index, name in enumerate(recipe["order"]):  # type: ignore[arg-type]
        entry = tensors[name]
        rng = np.random.default_rng([seed, index])  # per tensor: independent of the others
        if entry["kind"] == "const":
            value = np.full(tuple(entry["shape"]), entry["value"], dtype=np.float64)
        elif entry["kind"] == "verbatim":
            value = np.asarray(verbatim[name], dtype=np.float64)
        else:
            value = _draw(entry, rng)
        if variant == "perturbed":
            value = _perturb(name, value, entry, names, np.random.default_rng([seed, index, 1]))
            if name in overrides:  # calibrated by the harness (e.g. mask logits centred on 0)
                value = overrides[name]
        state[name] = np.asarray(value, dtype=np.float32)
    return state
