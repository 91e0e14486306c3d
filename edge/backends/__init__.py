"""Inference engines behind one narrow interface: named inputs in, outputs (in program order) out.

A new engine is one small module with a class that has `input_names` and `run(feeds)`.
Engines are imported lazily so a board with only `paddlelite` never imports `paddle`.
"""
from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import List, Mapping, Optional, Protocol, Sequence

import numpy as np

from ..errors import ConfigError

ENGINES = ("lite", "paddle")  # local engines; the pipeline config adds "auto" and "remote"


def lite_installed() -> bool:
    """Whether the `paddlelite` package is importable here (without importing it: it is slow)."""
    return importlib.util.find_spec("paddlelite") is not None


class Backend(Protocol):
    name: str
    input_names: Sequence[str]

    def run(self, feeds: Mapping[str, np.ndarray]) -> List[np.ndarray]:
        """Run one batch; returns the outputs in the program's output order."""


def create_backend(
    kind: str, model_path: Path, *, threads: Optional[int] = None, power_mode: Optional[str] = None,
    mkldnn: Optional[bool] = None, new_ir: bool = True, paddlex_config: bool = True, cut: Optional[str] = None,
) -> Backend:
    """`lite`: a `.nb` file (or a bundle's model.nb); `paddle`: an inference directory."""
    if kind == "lite":
        from .lite import LiteBackend

        return LiteBackend(Path(model_path), threads=threads, power_mode=power_mode)
    if kind == "paddle":
        from .paddle import PaddleBackend

        return PaddleBackend(Path(model_path), threads=threads, mkldnn=mkldnn, new_ir=new_ir,
                             paddlex_config=paddlex_config, cut=cut)
    raise ConfigError(f"unknown backend {kind!r}; choose one of {', '.join(ENGINES)}")
