"""Where models live on this machine: one cache, one layout, for the runtime and the exporter alike.

    $EDGE_CACHE (default ~/.cache/paddlex-edge)/
        official/<MODEL>_infer/     official inference directories (downloaded archives, extracted)
        downloads/                  the archives and .pdparams files themselves (+ .sha256 records)
        demo/<demo>-<target>/       the demo model's bundle for this host, exported on first use
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Optional


def cache_dir(root: Optional[Path] = None) -> Path:
    """`root` when given (tests, `--cache`), else $EDGE_CACHE, else ~/.cache/paddlex-edge."""
    if root is not None:
        return Path(root)
    return Path(os.environ.get("EDGE_CACHE") or Path.home() / ".cache" / "paddlex-edge")


def official_dir(name: str, root: Optional[Path] = None) -> Path:
    return cache_dir(root) / "official" / f"{name}_infer"


def downloads_dir(root: Optional[Path] = None) -> Path:
    return cache_dir(root) / "downloads"


def demo_dir(root: Optional[Path] = None) -> Path:
    return cache_dir(root) / "demo"
