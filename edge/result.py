"""One result type for every backend, with PaddleX's `print`, `json`, `save_to_json`, `img`, `save_to_img`."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Dict, List, Optional

import numpy as np

from .errors import InputError
from .inputs import IMAGE_SUFFIXES



def _jsonable(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    return value


class InstanceSegResult(dict):
    """PaddleX's result dict: `input_path`, `page_index`, `boxes`, `masks` (box-cropped 0/1 arrays).

    `computed_by` says where it was computed ("lite", "paddle" or "remote:<url>"); it is an
    attribute, not a key, so the printed and saved JSON stay exactly PaddleX's.
    """

    def __init__(
        self, input_path: Optional[str], page_index: Optional[int], boxes: List[dict], masks: List[np.ndarray],
        image: Optional[np.ndarray] = None, computed_by: str = "",
    ):
        super().__init__(input_path=input_path, page_index=page_index, boxes=boxes, masks=masks)
        self.image = image  # the BGR input, kept for visualisation
        self.computed_by = computed_by

    # ------------------------------------------------------------------ text / JSON
    @property
    def json(self) -> Dict[str, Any]:
        return {"res": _jsonable(dict(self))}

    def _printable(self) -> Dict[str, Any]:
        data = _jsonable({k: v for k, v in self.items() if k != "masks"})
        data["masks"] = "..."
        return {"res": data}

    def __str__(self) -> str:
        return str(self._printable())

    def print(self, format_json: bool = True, indent: int = 4, ensure_ascii: bool = False) -> None:
        if format_json:
            print(json.dumps(self._printable(), indent=indent, ensure_ascii=ensure_ascii))
        else:
            print(self._printable())

    def save_to_json(self, save_path: str, indent: int = 4, ensure_ascii: bool = False) -> Path:
        """Write what PaddleX 3.0.0 writes: the *inner* dict of `json` (input_path, page_index, boxes,
        masks), without the {"res": ...} wrapper, to <save_path>/<basename>_res.json or to save_path
        itself when it ends in .json (byte-compared with PaddleX's own output in tests/edge/test_result.py)."""
        path = self._target(save_path, ".json", (".json",))
        path.write_text(json.dumps(self.json["res"], indent=indent, ensure_ascii=ensure_ascii), encoding="utf-8")
        return path

    # ------------------------------------------------------------------ pictures
    @property
    def img(self) -> Dict[str, Any]:
        from .visualize import draw_instances

        if self.image is None:
            raise InputError(self["input_path"], "this result carries no input image to draw on")
        return {"res": draw_instances(self.image, self["boxes"], self["masks"])}

    def save_to_img(self, save_path: str) -> Path:
        suffix = Path(self["input_path"] or "").suffix.lower()
        path = self._target(save_path, suffix if suffix in IMAGE_SUFFIXES else ".jpg", IMAGE_SUFFIXES)
        image = self.img["res"]
        image.save(path, quality=95) if path.suffix.lower() in (".jpg", ".jpeg") else image.save(path)
        return path

    # ------------------------------------------------------------------ paths
    @property
    def basename(self) -> str:
        stem = Path(str(self["input_path"])).stem if self["input_path"] else "image"
        return stem if self["page_index"] is None else f"{stem}_{self['page_index']}"

    def _target(self, save_path: str, default_suffix: str, file_suffixes) -> Path:
        """A path with a known suffix is a file; anything else is a directory (PaddleX's rule)."""
        path = Path(save_path)
        if path.suffix.lower() in file_suffixes:
            path.parent.mkdir(parents=True, exist_ok=True)
            return path
        path.mkdir(parents=True, exist_ok=True)
        return path / f"{self.basename}_res{default_suffix}"
