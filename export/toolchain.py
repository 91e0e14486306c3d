"""The toolchain the exporter runs on: paddlepaddle (programs, PTQ) and paddlelite (opt).

Neither is imported here: a board that has only the runtime can still load the exporter's
commands, and gets a clear message naming the missing extra when it runs one.
"""
from __future__ import annotations

import importlib.util
from importlib import metadata
from typing import Dict, Optional, Sequence

import edge
from edge.errors import ExportError
from edge.plugins import EXPORT_EXTRA

REQUIRED = {"paddle": "paddlepaddle", "paddlelite": "paddlelite"}  # module -> distribution


def require_toolchain(what: str, modules: Sequence[str] = tuple(REQUIRED)) -> None:
    """Raise ExportError naming the missing packages when `what` cannot run on this install
    (`modules`: what it needs; a Paddle-only export, target `paddle`, runs without paddlelite)."""
    missing = [REQUIRED[module] for module in modules if importlib.util.find_spec(module) is None]
    if missing:
        raise ExportError(f"{what} needs {' and '.join(missing)}, which this install lacks: {EXPORT_EXTRA}")


def _package_version(dist: str) -> Optional[str]:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def toolchain_versions() -> Dict[str, Optional[str]]:
    """Versions recorded in a manifest (read from package metadata: importing paddle is slow)."""
    return {"paddle": _package_version("paddlepaddle"), "paddlelite": _package_version("paddlelite"),
            "edge": edge.__version__}
