"""The bundle stage: `<out_root>/<name>/` = model.nb + manifest.json + pipeline.yaml, written atomically.

Public functions
----------------
``write_bundle(out_root, name, nb_file, spec, input_shapes, extra=None, pipeline_yaml=None) -> Path``
    Copy ``nb_file`` to ``<out_root>/<name>/model.nb`` and write ``manifest.json`` =
    ``spec.manifest_fields(input_shapes)`` + ``model_file``, ``sha256`` (of model.nb), ``target``,
    ``precision``, ``quantization``, ``versions`` {paddle, paddlelite, edge}, ``verification``,
    ``created`` (UTC ISO-8601). ``extra`` supplies ``target`` (required), ``precision`` (default
    "fp32"), ``quantization`` and ``verification`` (default null) and any further keys to record.
    ``pipeline.yaml`` is SPEC.md §4's pipeline config (``pipeline_yaml`` or a default one) with
    ``model_dir: .`` so it points at the bundle it sits in.
    The bundle is built in a hidden temporary sibling directory and renamed into place; on any
    failure nothing half-written remains and an existing bundle is left as it was.
``read_bundle(path) -> (ModelSpec, manifest: dict, nb_path: Path)``
    Load a bundle directory; refuses (``ManifestError``) a manifest that is missing, malformed, of
    another schema version, or whose sha256 does not match ``model.nb``.
"""
from __future__ import annotations

import copy
import datetime as _dt
import json
import logging
import os
import shutil
import tempfile
from importlib import metadata
from pathlib import Path
from typing import Any, Dict, Mapping, Optional, Sequence, Tuple

import yaml

import edge
from edge.config import default_config, module_config
from edge.errors import ExportError
from edge.models import open_bundle, sha256_file
from edge.spec import ModelSpec


logger = logging.getLogger(__name__)

MODEL_FILE = "model.nb"
MANIFEST_FILE = "manifest.json"
PIPELINE_FILE = "pipeline.yaml"
TARGETS = ("arm", "x86", "opencl")
RESERVED_KEYS = ("model_file", "sha256", "versions", "created")


def default_pipeline_config(model_name: str, threshold: float = 0.5) -> Dict[str, Any]:
    """The runtime's default pipeline config (SPEC.md §4 + our keys) for one model."""
    config = default_config()
    module_config(config).update(model_name=model_name, threshold=threshold)
    return config


def _package_version(dist: str) -> Optional[str]:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def toolchain_versions() -> Dict[str, Optional[str]]:
    """Versions recorded in the manifest (read from package metadata: importing paddle is slow)."""
    return {
        "paddle": _package_version("paddlepaddle"),
        "paddlelite": _package_version("paddlelite"),
        "edge": edge.__version__,
    }


def _pipeline_for_bundle(spec: ModelSpec, pipeline_yaml: Optional[Mapping[str, Any]]) -> Dict[str, Any]:
    config = copy.deepcopy(dict(pipeline_yaml)) if pipeline_yaml else default_pipeline_config(spec.model_name, spec.draw_threshold)
    sub = config.setdefault("SubModules", {}).setdefault("InstanceSegmentation", {})
    if not isinstance(sub, dict):
        raise ExportError("pipeline_yaml['SubModules']['InstanceSegmentation'] must be a mapping (SPEC.md §4)")
    sub.setdefault("module_name", "instance_segmentation")
    sub["model_name"] = spec.model_name
    sub["model_dir"] = "."  # relative: the bundle can be copied to a board as one folder
    return config


def build_manifest(
    spec: ModelSpec, input_shapes: Sequence[Sequence[int]], nb_sha256: str, extra: Optional[Mapping[str, Any]]
) -> Dict[str, Any]:
    extra = dict(extra or {})
    clash = [k for k in RESERVED_KEYS if k in extra]
    if clash:
        raise ExportError(f"write_bundle: extra must not set {clash}; they are computed from the bundle itself")
    target = extra.pop("target", None)
    if target not in TARGETS:
        raise ExportError(f"write_bundle: extra['target'] must be one of {', '.join(TARGETS)}, got {target!r}")
    manifest = spec.manifest_fields(input_shapes)
    manifest.update(
        {
            "model_file": MODEL_FILE,
            "sha256": nb_sha256,
            "target": target,
            "precision": extra.pop("precision", "fp32"),
            "quantization": extra.pop("quantization", None),
            "versions": toolchain_versions(),
            "verification": extra.pop("verification", None),
            "created": _dt.datetime.now(_dt.timezone.utc).replace(microsecond=0).isoformat(),
        }
    )
    manifest.update(extra)
    return manifest


def write_bundle(
    out_root: Path,
    name: str,
    nb_file: Path,
    spec: ModelSpec,
    input_shapes: Sequence[Sequence[int]],
    extra: Optional[Mapping[str, Any]] = None,
    pipeline_yaml: Optional[Mapping[str, Any]] = None,
) -> Path:
    """Write `<out_root>/<name>/` atomically and return its path (see the module docstring)."""
    out_root, nb_file = Path(out_root), Path(nb_file)
    if not name or "/" in name or "\\" in name or name in (".", ".."):
        raise ExportError(f"bundle name {name!r} must be a plain directory name")
    if not nb_file.is_file():
        raise ExportError(f"{nb_file} does not exist: the optimize stage produced no .nb file, so no bundle was written")
    try:
        out_root.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{name}.partial-", dir=out_root))
    except OSError as exc:
        raise ExportError(f"cannot write bundles under {out_root}: {exc.strerror or exc}; choose a writable directory with --out") from None

    final = out_root / name
    try:
        shutil.copyfile(nb_file, staging / MODEL_FILE)
        manifest = build_manifest(spec, input_shapes, sha256_file(staging / MODEL_FILE), extra)
        text = json.dumps(manifest, indent=2, ensure_ascii=False, allow_nan=False)
        (staging / MANIFEST_FILE).write_text(text + "\n", encoding="utf-8")
        pipeline = _pipeline_for_bundle(spec, pipeline_yaml)
        (staging / PIPELINE_FILE).write_text(yaml.safe_dump(pipeline, sort_keys=False, allow_unicode=True), encoding="utf-8")
        _fsync_dir_files(staging)
        _swap_into_place(staging, final)
    except ExportError:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    except (OSError, TypeError, ValueError, yaml.YAMLError) as exc:
        shutil.rmtree(staging, ignore_errors=True)
        raise ExportError(f"writing bundle {final} failed ({type(exc).__name__}: {exc}); nothing was changed there") from None
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    logger.info("wrote bundle %s (%s, sha256 %s)", final, manifest["target"], manifest["sha256"][:12])
    return final


def _fsync_dir_files(folder: Path) -> None:
    # Data must be on disk before the rename publishes it, or a crash could expose empty files.
    for path in folder.iterdir():
        with open(path, "rb") as f:
            os.fsync(f.fileno())


def _swap_into_place(staging: Path, final: Path) -> None:
    """Rename `staging` to `final`; an existing `final` is replaced only once the new one is there."""
    if not final.exists():
        os.rename(staging, final)
        return
    if not final.is_dir():
        raise ExportError(f"{final} exists and is not a bundle directory; remove it or choose another --out")
    old = Path(tempfile.mkdtemp(prefix=f".{final.name}.old-", dir=final.parent))
    old.rmdir()
    os.rename(final, old)
    try:
        os.rename(staging, final)
    except BaseException:
        os.rename(old, final)  # put the previous bundle back
        raise
    shutil.rmtree(old, ignore_errors=True)


def read_bundle(path: Path) -> Tuple[ModelSpec, Dict[str, Any], Path]:
    """Load and check a bundle directory: (spec, manifest, path of model.nb); see edge.models.open_bundle."""
    model = open_bundle(Path(path))
    return model.spec, model.manifest, model.path
