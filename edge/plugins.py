"""Parts installed beside the runtime, found through the entry-point group `paddlex_edge.plugins`.

The runtime never imports the exporter: on a board it installs and runs without paddlepaddle.
The exporter registers itself here (pyproject.toml: `export = "export.plugin"`) and may offer:

* `add_commands(subparsers)`: more `edge` sub-commands (`edge export`, `edge demo`);
* `provide_model(name) -> Path`: a model directory for a model name on first use (the demo model
  exported into the cache, an official model downloaded), raising `ModelError` when it cannot.
"""
from __future__ import annotations

import logging
from functools import lru_cache
from importlib import metadata
from pathlib import Path
from types import ModuleType
from typing import Any, List, Optional

from .errors import ModelError

logger = logging.getLogger(__name__)

GROUP = "paddlex_edge.plugins"
EXPORT_EXTRA = "pip install 'paddlex-edge-seg[export]'"


@lru_cache(maxsize=None)
def plugins() -> List[ModuleType]:
    """The installed plugin modules; a plugin that fails to import is logged and left out."""
    found = []
    for entry in metadata.entry_points(group=GROUP):
        try:
            found.append(entry.load())
        except Exception as exc:  # a broken optional part must not break the runtime
            logger.warning("plugin %s (%s) could not be loaded: %s", entry.name, entry.value, exc)
    return found


def add_commands(subparsers: Any) -> None:
    for plugin in plugins():
        if hasattr(plugin, "add_commands"):
            plugin.add_commands(subparsers)


def provide_model(name: str, target: Optional[str] = None) -> Path:
    """A model directory for `name` (for the demo model: for `target`, default this host) from the
    first plugin that provides models."""
    for plugin in plugins():
        if hasattr(plugin, "provide_model"):
            return Path(plugin.provide_model(name, target=target))
    raise ModelError(
        f"{name} is not on this machine, and this install cannot fetch or export it (the exporter is not "
        f"installed: {EXPORT_EXTRA}). Export a bundle on a host with `edge export` and pass --model <bundle>, "
        "or point model_dir at a local inference directory."
    )
