"""Our own Paddle definitions of the two edge networks, with PaddleDetection's parameter names.

They rebuild an inference program from bare weights (`.pdparams`) or a PIR-only model, and can
export an *edge graph* (no control flow, no bmm, no BOOL parameters, no 0-D tensors, low-resolution
masks) that Paddle Lite converts and runs.

`build_network(name, ...)` / `export_network(name, out_dir, ...)` dispatch on the model name.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Dict, Mapping, Optional, Sequence, Union

from edge.errors import ConfigError

NETWORKS = ("PP-YOLOE_seg-S", "Mask-RT-DETR-S")


def _builders(name: str) -> Dict[str, Callable]:
    """(build, export) functions of a network, imported only when asked for (they import paddle)."""
    if name == "PP-YOLOE_seg-S":
        from .ppyoloe_seg import build_ppyoloe_seg, export_ppyoloe_seg

        return {"build": build_ppyoloe_seg, "export": export_ppyoloe_seg}
    if name == "Mask-RT-DETR-S":
        from .mask_rtdetr import build_mask_rtdetr, export_mask_rtdetr

        return {"build": build_mask_rtdetr, "export": export_mask_rtdetr}
    raise ConfigError(f"no network definition for {name!r}; networks we can rebuild: {', '.join(NETWORKS)}")


def build_network(name: str, num_classes: int = 80, input_size: Sequence[int] = (640, 640), graph: str = "edge",
                  weights: Optional[Union[str, Path, Mapping[str, Any]]] = None):
    """The named network in eval mode (`graph` "reference" or "edge"), with `weights` loaded strictly."""
    return _builders(name)["build"](num_classes=num_classes, input_size=input_size, graph=graph, weights=weights)


def export_network(name: str, out_dir: Union[str, Path], **kwargs) -> Path:
    """Save the named network as a legacy inference directory; kwargs: graph, num_classes, labels,
    input_size, weights, model_name (see export_ppyoloe_seg / export_mask_rtdetr)."""
    return _builders(name)["export"](out_dir, **kwargs)
