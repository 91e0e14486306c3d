"""The instance-segmentation pipeline: input -> preprocess -> backend -> postprocess -> result.

`create_pipeline` mirrors PaddleX's; `predict` is a generator. Where the model runs (Paddle Lite,
Paddle Inference or the `edge serve` endpoint) is chosen from the config, and the result's
`computed_by` says which one answered.
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Dict, Iterator, Optional, Union

from .config import PIPELINE_NAME, check_threshold, load_config, module_config
from .errors import BackendError, ConfigError, ModelError
from .models import named_model_dir, open_model_dir
from .predictor import FallbackPredictor, LocalPredictor, Predictor
from .result import InstanceSegResult
from .zoo import MODELS

logger = logging.getLogger(__name__)


def parse_device(device: Optional[str]) -> str:
    """PaddleX device strings; this runtime computes on the CPU (Lite's ARM/x86 CPU kernels)."""
    if device is None or device == "cpu":
        return "cpu"
    kind = str(device).split(":")[0]
    if kind in ("gpu", "npu", "xpu", "mlu", "dcu"):
        raise ConfigError(
            f"device {device!r} is not available: this runtime runs on the CPU (Paddle Lite / Paddle Inference CPU); "
            "use device='cpu', or serve the model from a machine with that device and set Serving.url"
        )
    raise ConfigError(f"unknown device {device!r}; expected cpu, gpu:0, npu:0, xpu:0, mlu:0 or dcu:0")


class InstanceSegPipeline:
    def __init__(self, config: Dict[str, Any], device: Optional[str] = None):
        self.config = config
        self.device = parse_device(device)
        module = module_config(config)
        self.threshold = module.get("threshold")
        self.predictor: Predictor = self._make_predictor(module)
        self.spec = self.predictor.spec

    def _make_predictor(self, module: Dict[str, Any]) -> Predictor:
        """Local, remote, or local with the server as fallback (`Serving.fallback`)."""
        serving = self.config.get("Serving") or {}
        backend = module.get("backend", "auto")
        name, model_dir = module.get("model_name"), module.get("model_dir")
        policy = serving.get("fallback", "server_only") if serving.get("url") else "never"
        server_only = model_dir is None and name in MODELS and not MODELS[name].edge
        if backend == "remote" or (server_only and policy != "never"):
            from .remote import RemotePredictor

            return RemotePredictor(serving, name)
        if policy != "on_error":
            return self._local_predictor(module)
        from .remote import RemotePredictor

        remote = RemotePredictor(serving, name)
        try:
            local = self._local_predictor(module)
        except (ModelError, BackendError) as err:  # not config mistakes: those must be fixed, not hidden
            logger.warning("local model unavailable (%s); every image goes to %s", err, remote.name)
            return remote
        return FallbackPredictor(local, remote, serving.get("latency_budget_ms"))

    def _local_predictor(self, module: Dict[str, Any]) -> LocalPredictor:
        name, model_dir = module.get("model_name"), module.get("model_dir")
        model = open_model_dir(Path(model_dir) if model_dir else named_model_dir(name, module.get("backend", "auto")))
        return LocalPredictor(model, module.get("backend", "auto"), module.get("threads"), module.get("power_mode"))

    def predict(self, input: Any, device: Optional[str] = None, threshold: Optional[float] = None,
                strict: bool = False) -> Iterator[InstanceSegResult]:
        """One result per image (per page of a PDF, per frame of a video).

        A bad item inside a list or directory is logged and skipped (`strict=True` raises instead);
        a bad single input always raises.
        """
        from .inputs import iter_inputs

        if device is not None:
            parse_device(device)
        threshold = self._threshold(threshold)
        single = not isinstance(input, (list, tuple)) and not (isinstance(input, (str, Path)) and Path(str(input)).is_dir())
        for item in iter_inputs(input, strict=strict):
            if item.error is not None:
                if strict or single:
                    raise item.error
                logger.warning("skipped: %s", item.error)
                continue
            detections = self.predictor(item.image, threshold)
            yield InstanceSegResult(item.input_path, item.page_index, detections.boxes, detections.masks,
                                    image=item.image, computed_by=detections.computed_by)

    def _threshold(self, threshold: Optional[float]) -> float:
        if threshold is not None:
            return check_threshold(threshold)
        if self.threshold is not None:
            return check_threshold(self.threshold)
        return self.spec.draw_threshold if self.spec else 0.5


def create_pipeline(pipeline: Union[str, Path] = PIPELINE_NAME, config: Optional[Dict[str, Any]] = None,
                    device: Optional[str] = None, use_hpip: bool = False) -> InstanceSegPipeline:
    """PaddleX's entry point. `config` overrides keys of the pipeline YAML (same nesting)."""
    if use_hpip:
        logger.warning("use_hpip has no effect here: the edge runtime has its own optimised engines")
    return InstanceSegPipeline(load_config(pipeline, config), device=device)
