"""The exporter as a plugin of the runtime (entry point `paddlex_edge.plugins: export`, edge/plugins.py).

The runtime calls in here, never the other way round:
* `add_commands`: `edge export` and `edge demo` (export/cli.py);
* `provide_model(name)`: on first use of a model name, the demo model is exported into the
  cache for this host, and an official model's inference archive is downloaded there.
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Optional

from edge.bundle import host_target
from edge.errors import EdgeError, ModelError
from edge.models import demo_bundle_dir
from edge.zoo import DEMO_MODEL

from .cli import add_commands  # noqa: F401  (part of the plugin interface)
from .toolchain import REQUIRED, require_toolchain

logger = logging.getLogger(__name__)


def provide_model(name: str, target: Optional[str] = None) -> Path:
    """A model directory for `name`, made on this machine (ModelError when it cannot be); the demo
    model is exported for `target` (default: this host; `paddle`: an inference directory)."""
    try:
        if name == DEMO_MODEL:
            require_toolchain("exporting the demo model on first use", ["paddle"] if target == "paddle" else REQUIRED)
            from .demo import demo_source
            from .exporter import ExportOptions, export_model

            bundle = demo_bundle_dir(target)
            logger.info("exporting the demo model to %s (first use)", bundle)
            options = ExportOptions(target=target or host_target(), out_dir=bundle.parent, verify=False)
            return export_model(demo_source(), options).path
        from .download import fetch_model

        return fetch_model(name, kind="inference")
    except ModelError:
        raise
    except EdgeError as err:
        raise ModelError(f"{name} is not on this machine and could not be provided: {err}") from None
