"""The bundle stage: `<out_root>/<name>/` = model.nb + manifest.json + pipeline.yaml, written atomically.

The format belongs to the runtime (edge/bundle.py: names, manifest schema, writer, reader); this
stage adds what only the exporter knows — the toolchain versions and the time of export — and
turns file-system failures into an ExportError that says where.

``write_bundle(out_root, name, nb_file, spec, input_shapes, extra=None, pipeline_yaml=None) -> Path``
    ``extra`` holds ``target`` (required) and the facts to record (``precision``, ``quantization``,
    ``verification``, ...). ``pipeline_yaml``: the pipeline config to ship (default: the
    runtime's default config for this model). An existing directory at ``<out_root>/<name>`` is
    replaced only if it is a bundle, and only once the new one is complete.
"""
from __future__ import annotations

import datetime as _dt
import logging
from pathlib import Path
from typing import Any, Mapping, Optional, Sequence

from edge import bundle
from edge.errors import ExportError, ManifestError
from edge.spec import ModelSpec

from .toolchain import toolchain_versions

logger = logging.getLogger(__name__)

RECORDED_BY_EXPORT = ("versions", "created")


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
    if not name or "/" in name or "\\" in name or name in (".", ".."):
        raise ExportError(f"bundle name {name!r} must be a plain directory name")
    nb_file, final = Path(nb_file), Path(out_root) / name
    if not nb_file.is_file():
        raise ExportError(f"{nb_file} does not exist: the optimize stage produced no .nb file, so no bundle was written")
    try:
        Path(out_root).mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ExportError(f"cannot write bundles under {out_root}: {exc.strerror or exc}; "
                          "choose a writable directory with --out") from None
    facts = dict(extra or {})
    clash = [k for k in bundle.COMPUTED_KEYS + RECORDED_BY_EXPORT if k in facts]
    if clash:
        raise ExportError(f"write_bundle: extra must not set {clash}; they are computed from the bundle itself")
    target = facts.pop("target", None)
    facts.update(versions=toolchain_versions(),
                 created=_dt.datetime.now(_dt.timezone.utc).replace(microsecond=0).isoformat())
    try:
        manifest = bundle.build_manifest(spec, input_shapes, target, facts)
        config = bundle.bundle_pipeline_config(spec, pipeline_yaml)
        bundle.write_bundle(final, nb_file, manifest, config)
    except ManifestError as exc:
        raise ExportError(f"write_bundle: {exc}") from None
    except FileExistsError:
        raise ExportError(f"{final} exists and is not a bundle; remove it or choose another --out "
                          "(only an earlier bundle is replaced)") from None
    except (OSError, TypeError, ValueError) as exc:
        raise ExportError(f"writing bundle {final} failed ({type(exc).__name__}: {exc}); nothing was changed there") from None
    logger.info("wrote bundle %s (%s)", final, target)
    return final
