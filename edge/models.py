"""Find the model a pipeline runs: a bundle, an inference directory, or a zoo name.

A **bundle** (`edge export`'s output) is `model.nb` + `manifest.json` (+ `pipeline.yaml`); it is
refused when the manifest's schema or the sha256 of model.nb does not match. An **inference
directory** is `inference.yml` + `inference.pdiparams` + `inference.pdmodel` or `inference.json`.
"""
from __future__ import annotations

import hashlib
import logging
import os
import platform
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, Optional

from .errors import ManifestError, ModelError
from .spec import ModelSpec, load_manifest
from .zoo import get_model

logger = logging.getLogger(__name__)

BUNDLE_MODEL_FILE = "model.nb"
MANIFEST_FILE = "manifest.json"


def cache_dir() -> Path:
    """Where official models are cached ($EDGE_CACHE, default ~/.cache/paddlex-edge)."""
    return Path(os.environ.get("EDGE_CACHE", Path.home() / ".cache" / "paddlex-edge"))


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


@dataclass
class LocalModel:
    kind: str  # "bundle" | "inference_dir"
    path: Path  # model.nb for a bundle, the directory otherwise
    spec: ModelSpec
    manifest: Optional[Dict[str, Any]] = None


def open_bundle(bundle_dir: Path) -> LocalModel:
    """Load and check a bundle: refused when the manifest is missing, malformed, of another schema
    version, or when model.nb does not match the sha256 the manifest records."""
    bundle_dir = Path(bundle_dir)
    if not bundle_dir.is_dir():
        raise ManifestError(f"{bundle_dir} is not a bundle directory (expected {BUNDLE_MODEL_FILE} + {MANIFEST_FILE})")
    manifest_path = bundle_dir / MANIFEST_FILE
    manifest = load_manifest(manifest_path)
    spec = ModelSpec.from_manifest(manifest, manifest_path)
    model_file = manifest.get("model_file", BUNDLE_MODEL_FILE)
    if not isinstance(model_file, str) or Path(model_file).name != model_file:
        raise ManifestError(f"{manifest_path}: model_file {model_file!r} must be a file name inside the bundle")
    nb_path = bundle_dir / model_file
    if not nb_path.is_file():
        raise ManifestError(f"{nb_path} is missing; the bundle is incomplete, re-run `edge export`")
    expected = manifest.get("sha256")
    if not isinstance(expected, str):
        raise ManifestError(f"{manifest_path} records no sha256 for {model_file}; re-run `edge export`")
    actual = sha256_file(nb_path)
    if actual != expected.lower():
        raise ManifestError(
            f"{nb_path}: sha256 {actual} does not match {expected} recorded in {manifest_path}; the model file was "
            "changed or damaged after export. Re-run `edge export` (or copy the bundle again)."
        )
    return LocalModel("bundle", nb_path, spec, manifest)


def open_model_dir(model_dir: Path) -> LocalModel:
    """A bundle or an inference directory (or a `.nb` file inside a bundle)."""
    model_dir = Path(model_dir)
    if model_dir.is_file() and model_dir.suffix == ".nb":
        model_dir = model_dir.parent
    if not model_dir.exists():
        raise ModelError(f"model directory {model_dir} does not exist")
    has_yml = (model_dir / "inference.yml").exists()
    if (model_dir / MANIFEST_FILE).exists() or ((model_dir / BUNDLE_MODEL_FILE).exists() and not has_yml):
        return open_bundle(model_dir)
    if has_yml:
        from .backends.paddle import find_program

        find_program(model_dir)  # names the missing file now rather than at load time
        return LocalModel("inference_dir", model_dir, ModelSpec.from_inference_yml(model_dir / "inference.yml"))
    raise ModelError(
        f"{model_dir} is neither a bundle (model.nb + manifest.json) nor an inference directory "
        "(inference.yml + inference.pdiparams + inference.pdmodel/json)"
    )


DEMO_MODEL = "PP-YOLOE_seg-demo"


def host_target() -> str:
    """The Paddle Lite target whose .nb runs on this machine."""
    return "arm" if platform.machine().lower() in ("aarch64", "arm64", "armv7l", "armv8l") else "x86"


def demo_bundle() -> Path:
    """The project's demo model as a bundle for this host, exported into the cache on first use."""
    root = cache_dir() / "demo"
    bundle = root / f"{DEMO_MODEL}-{host_target()}"
    if (bundle / MANIFEST_FILE).exists():
        return bundle
    try:
        import export  # noqa: F401  (legacy program mode before paddle is imported)
        from export.exporter import ExportOptions, export_model
        from export.demo import demo_source
    except ImportError as exc:
        raise ModelError(
            f"the demo model has not been exported on this machine and this install cannot export ({exc}); "
            "run `edge export` on a host and copy the bundle here, then pass --model <bundle>"
        ) from None
    logger.info("exporting the demo model to %s (first use)", bundle)
    return export_model(demo_source(), ExportOptions(target=host_target(), out_dir=root, verify=False)).path


def official_model_dir(name: str, *, download: bool = True) -> Path:
    """The cached official inference directory of a zoo model, downloading it when allowed."""
    if name == DEMO_MODEL:
        return demo_bundle()
    model = get_model(name)
    local = cache_dir() / "official" / f"{model.name}_infer"
    if (local / "inference.yml").exists():
        return local
    if not download:
        raise ModelError(f"{name} is not in the cache ({local}); pass model_dir / --model-dir DIR")
    try:
        from export.download import fetch_model
    except ImportError:
        raise ModelError(
            f"{name} is not cached at {local} and this install cannot download (the export extra is missing); "
            "point model_dir at a local inference directory or bundle"
        ) from None
    return Path(fetch_model(name, kind="inference"))
