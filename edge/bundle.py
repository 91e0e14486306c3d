"""The bundle: what `edge export` writes and every runtime reads (this one, the Android demo, the server).

`<name>/` = `model.nb` + `manifest.json` + `pipeline.yaml`. The manifest is the contract:
`schema_version`, `model_name`, `arch`, `inputs` (name, shape, dtype), `outputs` (box row layout,
mask layout — see edge/spec.py), `preprocess`, `labels`, `draw_threshold`, then the facts of the
export: `model_file` and its `sha256`, `target`, `precision`, `quantization`, `versions`,
`verification`, `created`, and whatever else the exporter records (e.g. `runtime_requires`: the
Paddle Lite fixes a bundle's kernels need, export/lite_fixes.py). `pipeline.yaml` is the
pipeline config with `model_dir: .`, so the folder can be copied to a board as it is.

This module owns the format: names, schema, building a manifest, writing a bundle (the export
stage only writes through `write_bundle`), and opening one (refused when the manifest is
missing, malformed, of another schema, or when model.nb does not match its recorded sha256).
"""
from __future__ import annotations

import copy
import json
import math
import platform
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, Mapping, Optional, Sequence

import yaml

from .config import default_config
from .errors import ManifestError
from .files import publishing, sha256_file
from .spec import DEFAULT_INPUT_NAMES, DEFAULT_OUTPUT_NAMES, MaskLayout, ModelSpec

MODEL_FILE = "model.nb"
MANIFEST_FILE = "manifest.json"
PIPELINE_FILE = "pipeline.yaml"
TARGETS = ("arm", "x86", "opencl")
SCHEMA_VERSION = 1
BOX_ROW_LAYOUT = ("cls", "score", "x1", "y1", "x2", "y2")
COMPUTED_KEYS = ("model_file", "sha256")  # written from the bundle's own files, never passed in


def host_target() -> str:
    """The Paddle Lite target whose .nb runs on this machine."""
    return "arm" if platform.machine().lower() in ("aarch64", "arm64", "armv7l", "armv8l") else "x86"


def is_bundle(path: Path) -> bool:
    return (Path(path) / MANIFEST_FILE).is_file()


@dataclass(frozen=True)
class Bundle:
    path: Path  # the bundle directory
    model_path: Path  # its model.nb
    manifest: Dict[str, Any]
    spec: ModelSpec


# ---------------------------------------------------------------------------------------- writing
def build_manifest(spec: ModelSpec, input_shapes: Sequence[Sequence[int]], target: str,
                   facts: Optional[Mapping[str, Any]] = None) -> Dict[str, Any]:
    """The manifest of a bundle, less `model_file` / `sha256` (added by `write_bundle`).

    `facts` are the export's own records (precision, quantization, versions, verification, ...);
    `precision` defaults to "fp32", `quantization` and `verification` to null.
    """
    facts = dict(facts or {})
    clash = [k for k in COMPUTED_KEYS + ("target",) if k in facts]
    if clash:
        raise ManifestError(f"build_manifest: {clash} are not facts to pass in; they come from the bundle itself")
    if target not in TARGETS:
        raise ManifestError(f"bundle target must be one of {', '.join(TARGETS)}, got {target!r}")
    mask = {"name": spec.output_names[2], **spec.mask_layout.to_dict()}
    manifest: Dict[str, Any] = {
        "schema_version": SCHEMA_VERSION,
        "model_name": spec.model_name,
        "arch": spec.arch,
        "inputs": [{"name": n, "shape": list(s), "dtype": "float32"} for n, s in zip(spec.input_names, input_shapes)],
        "outputs": {
            "bbox": {"name": spec.output_names[0], "layout": list(BOX_ROW_LAYOUT), "frame": "original_image"},
            "bbox_num": {"name": spec.output_names[1], "dtype": "int32"},
            "mask": mask,
        },
        "preprocess": spec.preprocess,
        "labels": spec.labels,
        "draw_threshold": spec.draw_threshold,
        "target": target,
        "precision": facts.pop("precision", "fp32"),
        "quantization": facts.pop("quantization", None),
        "verification": facts.pop("verification", None),
    }
    manifest.update(facts)
    return manifest


def bundle_pipeline_config(spec: ModelSpec, base: Optional[Mapping[str, Any]] = None) -> Dict[str, Any]:
    """The bundle's pipeline.yaml: `base` (default: the runtime's default config) pointing at the bundle."""
    config = copy.deepcopy(dict(base)) if base else default_config()
    module = config.setdefault("SubModules", {}).setdefault("InstanceSegmentation", {})
    if not isinstance(module, dict):
        raise ManifestError("pipeline config: SubModules.InstanceSegmentation must be a mapping")
    module.setdefault("module_name", "instance_segmentation")
    if base is None:
        module["threshold"] = spec.draw_threshold
    module["model_name"] = spec.model_name
    module["model_dir"] = "."  # relative: the bundle can be copied to a board as one folder
    return config


def write_bundle(final: Path, nb_file: Path, manifest: Mapping[str, Any],
                 pipeline_config: Mapping[str, Any]) -> Path:
    """Write the bundle directory `final` atomically (see edge.files.publishing); returns it.

    An existing directory at `final` is replaced only if it is a bundle. OS errors propagate
    (the caller names its context); nothing half-written remains.
    """
    final = Path(final)
    with publishing(final, replace_if=is_bundle, fsync=True) as staging:
        model = staging / MODEL_FILE
        model.write_bytes(Path(nb_file).read_bytes())
        full = {**manifest, "model_file": MODEL_FILE, "sha256": sha256_file(model)}
        text = json.dumps(full, indent=2, ensure_ascii=False, allow_nan=False)
        (staging / MANIFEST_FILE).write_text(text + "\n", encoding="utf-8")
        yaml_text = yaml.safe_dump(dict(pipeline_config), sort_keys=False, allow_unicode=True)
        (staging / PIPELINE_FILE).write_text(yaml_text, encoding="utf-8")
    return final


# ---------------------------------------------------------------------------------------- reading
def load_manifest(path: Path) -> Dict[str, Any]:
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ManifestError(f"{path} is missing: a bundle is model.nb + manifest.json; re-run `edge export`") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ManifestError(f"{path} is not valid JSON ({exc}); the bundle may be half-written, re-run `edge export`") from None
    if not isinstance(data, dict):
        raise ManifestError(f"{path} must hold a JSON object")
    return data


# ---------------------------------------------------------------------------------------- schema
def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _is_count(value: Any, least: int = 1) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= least


def _size_problem(value: Any) -> Optional[str]:
    """None for a positive int or [h, w] of positive ints (Resize.target_size, Pad.size)."""
    if _is_count(value) or (isinstance(value, list) and len(value) == 2 and all(_is_count(v) for v in value)):
        return None
    return f"must be a positive integer or [height, width] of positive integers, got {value!r}"


def _preprocess_problem(index: int, op: Any) -> Optional[str]:
    where = f"preprocess[{index}]"
    if not isinstance(op, dict) or not isinstance(op.get("type"), str):
        return f"{where} must be an object with a 'type'"
    kind = op["type"]
    if kind == "Resize":
        problem = _size_problem(op.get("target_size"))
        if problem:
            return f"{where}.target_size {problem}"
        if "keep_ratio" in op and not isinstance(op["keep_ratio"], bool):
            return f"{where}.keep_ratio must be true or false, got {op['keep_ratio']!r}"
    if kind == "Pad":
        problem = _size_problem(op.get("size"))
        if problem:
            return f"{where}.size {problem}"
    if kind == "PadStride" and not _is_count(op.get("stride", 0), least=0):
        return f"{where}.stride must be an integer >= 0, got {op.get('stride')!r}"
    if kind == "NormalizeImage":
        for key in ("mean", "std"):
            value = op.get(key, [0.0, 0.0, 0.0])
            if not (isinstance(value, list) and len(value) == 3 and all(_is_number(v) for v in value)):
                return f"{where}.{key} must be a list of 3 numbers, got {value!r}"
    return None


def manifest_problem(manifest: Mapping[str, Any]) -> Optional[str]:
    """The first field of a manifest (schema version 1) that the runtime cannot use, or None."""
    if not (isinstance(manifest.get("model_name"), str) and manifest["model_name"]):
        return f"model_name must be a non-empty string, got {manifest.get('model_name')!r}"
    labels = manifest.get("labels")
    if not (isinstance(labels, list) and all(isinstance(v, str) for v in labels)):
        return "labels must be a list of strings"
    threshold = manifest.get("draw_threshold", 0.5)
    if not (_is_number(threshold) and 0 <= threshold <= 1):
        return f"draw_threshold must be a number in [0, 1], got {threshold!r}"
    inputs = manifest.get("inputs")
    if not (isinstance(inputs, list) and len(inputs) == len(DEFAULT_INPUT_NAMES)
            and all(isinstance(i, dict) and isinstance(i.get("name"), str) and i["name"] for i in inputs)):
        return f"inputs must be a list of {len(DEFAULT_INPUT_NAMES)} objects with a name (im_shape, image, scale_factor)"
    for i, item in enumerate(inputs):
        shape = item.get("shape", [1])
        if not (isinstance(shape, list) and all(_is_count(v) or v == -1 for v in shape)):
            return f"inputs[{i}].shape must be a list of positive integers (or -1), got {shape!r}"
    outputs = manifest.get("outputs")
    if not (isinstance(outputs, dict) and all(isinstance(outputs.get(k), dict) and isinstance(outputs[k].get("name"), str)
                                              for k in DEFAULT_OUTPUT_NAMES)):
        return f"outputs must name each of {', '.join(DEFAULT_OUTPUT_NAMES)}"
    mask = outputs["mask"]
    if mask.get("kind", "full") not in ("full", "lowres"):
        return f"outputs.mask.kind must be 'full' or 'lowres', got {mask.get('kind')!r}"
    if not _is_count(mask.get("stride", 1)):
        return f"outputs.mask.stride must be a positive integer, got {mask.get('stride')!r}"
    if not _is_number(mask.get("threshold", 0.5)):
        return f"outputs.mask.threshold must be a number, got {mask.get('threshold')!r}"
    preprocess = manifest.get("preprocess")
    if not isinstance(preprocess, list):
        return "preprocess must be a list of ops"
    for index, op in enumerate(preprocess):
        problem = _preprocess_problem(index, op)
        if problem:
            return problem
    return None


def spec_from_manifest(manifest: Mapping[str, Any], where: object = MANIFEST_FILE) -> ModelSpec:
    """The model description in a manifest, checked against the schema."""
    version = manifest.get("schema_version")
    if version != SCHEMA_VERSION:
        raise ManifestError(
            f"{where}: schema_version {version!r} is not supported by this runtime "
            f"(expects {SCHEMA_VERSION}); re-export the bundle with this version of `edge export`"
        )
    problem = manifest_problem(manifest)
    if problem:
        raise ManifestError(f"{where}: {problem}; the manifest was edited or damaged, re-run `edge export`")
    try:
        outputs = manifest["outputs"]
        return ModelSpec(
            model_name=manifest["model_name"],
            arch=manifest.get("arch", ""),
            preprocess=list(manifest["preprocess"]),
            labels=list(manifest["labels"]),
            draw_threshold=float(manifest.get("draw_threshold", 0.5)),
            input_names=tuple(i["name"] for i in manifest["inputs"]),
            output_names=(outputs["bbox"]["name"], outputs["bbox_num"]["name"], outputs["mask"]["name"]),
            mask_layout=MaskLayout.from_dict(outputs["mask"]),
        )
    except (KeyError, TypeError) as exc:
        raise ManifestError(f"{where}: missing or malformed field {exc}; re-export the bundle") from None


def open_bundle(bundle_dir: Path) -> Bundle:
    """Load and check a bundle directory (see the module docstring for what is refused)."""
    bundle_dir = Path(bundle_dir)
    if not bundle_dir.is_dir():
        raise ManifestError(f"{bundle_dir} is not a bundle directory (expected {MODEL_FILE} + {MANIFEST_FILE})")
    manifest_path = bundle_dir / MANIFEST_FILE
    manifest = load_manifest(manifest_path)
    spec = spec_from_manifest(manifest, manifest_path)
    model_file = manifest.get("model_file", MODEL_FILE)
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
    return Bundle(bundle_dir, nb_path, manifest, spec)
