"""What the runtime needs to know about a model, read from `inference.yml` or a bundle's manifest.

Both sources describe the same things: the pre-processing ops, the labels, the default threshold,
the input names, and the layout of the `mask` output. Nothing in the runtime is hard-coded per
model; everything comes from here.

Mask layouts
------------
``full`` (PaddleDetection's export): ``mask`` is ``[N, H, W]``, 0/1 at the original image size.

``lowres`` (this project's edge graph): ``mask`` is ``[N, Hm, Wm]`` float, covering the model
input tensor ``image`` (top-left aligned, ``Hm * stride`` = input height) at 1/``stride``
resolution. A pixel (x, y) of the original image samples the mask bilinearly at
``u = (x + 0.5) * scale_w / stride - 0.5`` (same for v with ``scale_h``); it belongs to the
instance when the sample is ``> threshold`` (0.5 for probabilities, 0.0 for logits).
Only kept instances are resized, and only inside their box.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

import yaml

from .errors import ModelError

DEFAULT_INPUT_NAMES = ("im_shape", "image", "scale_factor")
DEFAULT_OUTPUT_NAMES = ("bbox", "bbox_num", "mask")


@dataclass(frozen=True)
class MaskLayout:
    kind: str = "full"  # "full" | "lowres"
    stride: int = 1
    threshold: float = 0.5

    @classmethod
    def from_dict(cls, data: Optional[Dict[str, Any]]) -> "MaskLayout":
        if not data:
            return cls()
        kind = data.get("kind", "full")
        if kind not in ("full", "lowres"):
            raise ModelError(f"unknown mask layout kind {kind!r} (expected 'full' or 'lowres')")
        return cls(kind=kind, stride=int(data.get("stride", 1)), threshold=float(data.get("threshold", 0.5)))

    def to_dict(self) -> Dict[str, Any]:
        return {"kind": self.kind, "stride": self.stride, "threshold": self.threshold}


@dataclass(frozen=True)
class ModelSpec:
    model_name: str
    arch: str
    preprocess: List[Dict[str, Any]]
    labels: List[str]
    draw_threshold: float = 0.5
    input_names: Tuple[str, ...] = DEFAULT_INPUT_NAMES
    output_names: Tuple[str, ...] = DEFAULT_OUTPUT_NAMES
    mask_layout: MaskLayout = field(default_factory=MaskLayout)

    def label(self, cls_id: int) -> str:
        return self.labels[cls_id] if 0 <= cls_id < len(self.labels) else str(cls_id)

    @property
    def input_size(self) -> Optional[Tuple[int, int]]:
        """[h, w] of the Resize op, when there is one."""
        for op in self.preprocess:
            if op.get("type") == "Resize":
                h, w = op["target_size"] if isinstance(op["target_size"], (list, tuple)) else [op["target_size"]] * 2
                return int(h), int(w)
        return None

    # ------------------------------------------------------------------ inference.yml
    @classmethod
    def from_inference_yml(cls, path: Path) -> "ModelSpec":
        path = Path(path)
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        except FileNotFoundError:
            raise ModelError(f"{path} is missing: an inference model directory needs inference.yml") from None
        except yaml.YAMLError as exc:
            raise ModelError(f"{path} is not valid YAML: {exc}") from None
        if not isinstance(data, dict) or "Preprocess" not in data:
            raise ModelError(f"{path} has no 'Preprocess' list: is this an exported PaddleDetection model?")
        name = (data.get("Global") or {}).get("model_name") or path.parent.name
        return cls(
            model_name=str(name),
            arch=str(data.get("arch", "")),
            preprocess=list(data["Preprocess"]),
            labels=[str(x) for x in data.get("label_list") or []],
            draw_threshold=float(data.get("draw_threshold", 0.5)),
            mask_layout=MaskLayout.from_dict(data.get("mask_layout")),
        )

    def inference_yml_dict(self) -> Dict[str, Any]:
        """The keys PaddleDetection's exporter writes, plus our `mask_layout` when not 'full'."""
        data: Dict[str, Any] = {
            "mode": "paddle",
            "draw_threshold": self.draw_threshold,
            "metric": "COCO",
            "use_dynamic_shape": False,
            "Global": {"model_name": self.model_name},
            "arch": self.arch,
            "min_subgraph_size": 3,
            "mask": True,
            "Preprocess": self.preprocess,
            "label_list": self.labels,
        }
        if self.mask_layout.kind != "full":
            data["mask_layout"] = self.mask_layout.to_dict()
        return data

    def write_inference_yml(self, path: Path) -> None:
        Path(path).write_text(yaml.safe_dump(self.inference_yml_dict(), sort_keys=False, allow_unicode=True), encoding="utf-8")
