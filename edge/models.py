"""Find the model a pipeline runs: a bundle, an inference directory, or a model name.

A **bundle** (`edge export`'s output, edge/bundle.py) runs on Paddle Lite; an **inference
directory** (edge/inference_dir.py) runs on Paddle Inference. A **name** is looked up in the cache
(edge/cache.py); a model that is not there yet is provided by a plugin (edge/plugins.py: the
exporter exports the demo model or downloads an official one) when one is installed.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, Optional

from . import cache, plugins
from .backends import lite_installed
from .bundle import MANIFEST_FILE, MODEL_FILE, host_target, is_bundle, open_bundle
from .errors import ModelError
from .inference_dir import INFERENCE_YML, find_program, is_inference_dir
from .spec import ModelSpec
from .zoo import DEMO_MODEL, get_model

logger = logging.getLogger(__name__)


@dataclass
class LocalModel:
    kind: str  # "bundle" | "inference_dir"
    path: Path  # model.nb for a bundle, the directory otherwise
    spec: ModelSpec
    manifest: Optional[Dict[str, Any]] = None


def open_model_dir(model_dir: Path) -> LocalModel:
    """A bundle or an inference directory (or a `.nb` file inside a bundle)."""
    model_dir = Path(model_dir)
    if model_dir.is_file() and model_dir.suffix == ".nb":
        model_dir = model_dir.parent
    if not model_dir.exists():
        raise ModelError(f"model directory {model_dir} does not exist")
    has_yml = is_inference_dir(model_dir)
    if is_bundle(model_dir) or ((model_dir / MODEL_FILE).exists() and not has_yml):
        bundle = open_bundle(model_dir)
        return LocalModel("bundle", bundle.model_path, bundle.spec, bundle.manifest)
    if has_yml:
        find_program(model_dir)  # names the missing file now rather than at load time
        return LocalModel("inference_dir", model_dir, ModelSpec.from_inference_yml(model_dir / INFERENCE_YML))
    raise ModelError(
        f"{model_dir} is neither a bundle ({MODEL_FILE} + {MANIFEST_FILE}) nor an inference directory "
        f"({INFERENCE_YML} + inference.pdiparams + inference.pdmodel/json)"
    )


def demo_bundle_dir(target: Optional[str] = None) -> Path:
    """Where the demo model for `target` (default: this host) lives in the cache: a bundle, or for
    target `paddle` the inference directory that Paddle Inference runs."""
    return cache.demo_dir() / f"{DEMO_MODEL}-{target or host_target()}"


def named_model_dir(name: str, backend: str = "auto") -> Path:
    """The local directory of a named model: from the cache, else provided by a plugin on first use."""
    if name != DEMO_MODEL:
        local = cache.official_dir(get_model(name).name)
        return local if is_inference_dir(local) else plugins.provide_model(name)
    target = None
    if backend == "paddle" or (backend == "auto" and not lite_installed()):
        if backend == "auto":  # e.g. an aarch64 board without the project's paddlelite wheel
            logger.warning("paddlelite is not installed: backend auto runs %s on Paddle Inference", name)
        target = "paddle"
    local = demo_bundle_dir(target)
    if is_bundle(local) or is_inference_dir(local):
        return local
    return plugins.provide_model(name, target=target)
