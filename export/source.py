"""The source stage: where the model to export comes from.

- a zoo name (`--model PP-YOLOE_seg-S`): the official pretrained weights, downloaded into the
  cache (PaddleX's official inference archives are PIR programs, which Lite cannot read, so the
  program is rebuilt from weights through our networks);
- a local inference directory (`--model-dir DIR`): a legacy `inference.pdmodel` program is used
  as it is; a PIR-only directory needs its weights (`--weights`) to be rebuilt;
- fine-tuned weights (`--weights FILE.pdparams` with `--model ARCH`, `--num-classes` / `--labels`);
- nothing: the project's own demo model, shipped in the repository (offline default).
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import List, Optional, Sequence

from edge.errors import ExportError
from edge.inference_dir import INFERENCE_YML, LEGACY_PROGRAM, PARAMS_FILE, PIR_PROGRAM
from edge.spec import ModelSpec
from edge.zoo import COCO_LABELS, DEMO_MODEL, EDGE_MODELS, MODELS, get_model

from .program import default_labels

logger = logging.getLogger(__name__)


@dataclass
class Source:
    """What to export: a legacy program as it is, or an architecture plus weights to rebuild."""

    model_name: str
    arch: Optional[str] = None  # "PP-YOLOE_seg-S" | "Mask-RT-DETR-S" | DEMO_MODEL, when rebuilding
    weights: Optional[Path] = None
    legacy_dir: Optional[Path] = None  # a legacy inference directory used as it is
    labels: List[str] = field(default_factory=list)
    input_size: Sequence[int] = (640, 640)
    calib_dir: Optional[Path] = None  # calibration images that fit this model (default: export/calib_images)
    eval_data: Optional[Path] = None  # labelled data (COCO json, images/ beside it) for mask AP in verify

    @property
    def rebuild(self) -> bool:
        return self.legacy_dir is None


def read_labels(path: Path) -> List[str]:
    try:
        labels = [line.strip() for line in Path(path).read_text(encoding="utf-8").splitlines() if line.strip()]
    except OSError as exc:
        raise ExportError(f"cannot read the label file {path}: {exc.strerror or exc}") from None
    if not labels:
        raise ExportError(f"label file {path} is empty: one class name per line")
    return labels


def _edge_arch(name: str) -> str:
    model = get_model(name)
    if not model.edge:
        raise ExportError(
            f"{name} is a full-size model: it is served, not exported to a board. Run it with "
            f"`edge serve --model-dir <its inference directory>` and point the runtime's Serving.url at it. "
            f"Exportable models: {', '.join(EDGE_MODELS)}."
        )
    return name


def resolve_source(
    model: Optional[str] = None, model_dir: Optional[Path] = None, weights: Optional[Path] = None,
    num_classes: Optional[int] = None, labels_file: Optional[Path] = None,
    input_size: Optional[Sequence[int]] = None, download: bool = True,
) -> Source:
    labels = read_labels(labels_file) if labels_file else None
    if labels and num_classes and len(labels) != num_classes:
        raise ExportError(f"--labels has {len(labels)} names but --num-classes is {num_classes}")

    if model_dir is not None:
        return _from_model_dir(Path(model_dir), model, weights, labels, input_size)

    if weights is not None:
        if not model:
            raise ExportError(f"--weights needs --model to name the architecture ({', '.join(EDGE_MODELS)})")
        arch = _edge_arch(model)
        if not Path(weights).is_file():
            raise ExportError(f"weights file {weights} does not exist")
        count = len(labels) if labels else (num_classes or len(COCO_LABELS))
        names = labels or default_labels(count)
        return Source(arch, arch, Path(weights), labels=names, input_size=tuple(input_size or (640, 640)))

    if model in (None, DEMO_MODEL):
        from .demo import demo_source

        return demo_source()

    arch = _edge_arch(model)
    if not download:
        raise ExportError(f"{model} needs its official weights; pass --weights FILE.pdparams or --model-dir DIR")
    from .download import fetch_model

    path = fetch_model(arch, kind="pretrained")
    return Source(arch, arch, path, labels=list(COCO_LABELS), input_size=tuple(input_size or get_model(arch).input_size))


def _from_model_dir(model_dir: Path, model: Optional[str], weights: Optional[Path],
                    labels: Optional[List[str]], input_size: Optional[Sequence[int]]) -> Source:
    if not model_dir.is_dir():
        raise ExportError(f"--model-dir {model_dir} is not a directory")
    yml = model_dir / INFERENCE_YML
    if not yml.is_file():
        raise ExportError(f"{model_dir} has no {INFERENCE_YML}: point --model-dir at an exported inference directory")
    spec = ModelSpec.from_inference_yml(yml)
    name = spec.model_name
    if (model_dir / LEGACY_PROGRAM).is_file():
        if not (model_dir / PARAMS_FILE).is_file():
            raise ExportError(f"{model_dir} has {LEGACY_PROGRAM} but no {PARAMS_FILE}; copy the whole directory")
        return Source(name, legacy_dir=model_dir, labels=labels or spec.labels, input_size=spec.input_size or (640, 640))
    if (model_dir / PIR_PROGRAM).is_file():
        if weights is None:
            raise ExportError(
                f"{model_dir} holds a PIR program (inference.json), which Paddle Lite cannot read. Pass the model's "
                "training weights with --weights FILE.pdparams (PaddleX saves them next to the inference model, e.g. "
                "output/best_model/best_model.pdparams) and the program is rebuilt through our network definitions."
            )
        arch = model or _arch_from_spec(spec)
        return Source(name, _edge_arch(arch), Path(weights), labels=labels or spec.labels,
                      input_size=tuple(input_size or spec.input_size or (640, 640)))
    raise ExportError(f"{model_dir} has neither {LEGACY_PROGRAM} nor {PIR_PROGRAM}")


def _arch_from_spec(spec: ModelSpec) -> str:
    if spec.model_name in MODELS:
        return spec.model_name
    by_arch = {"PPYOLOE": "PP-YOLOE_seg-S", "DETR": "Mask-RT-DETR-S"}
    if spec.arch in by_arch:
        return by_arch[spec.arch]
    raise ExportError(f"cannot tell the architecture of {spec.model_name!r} (arch {spec.arch!r}); pass --model")
