"""The instance-segmentation pipeline: input -> preprocess -> backend -> postprocess -> result.

`create_pipeline` mirrors PaddleX's; `predict` is a generator. Where the model runs (Paddle Lite,
Paddle Inference or the `edge serve` endpoint) is chosen from the config, and the result's
`computed_by` says which one answered.
"""
from __future__ import annotations

import logging
import threading
import time
from pathlib import Path
from typing import Any, Dict, Iterator, Optional, Tuple, Union

import numpy as np

from .config import PIPELINE_NAME, check_threshold, load_config, module_config
from .errors import BackendError, ConfigError, ModelError, RemoteError
from .models import LocalModel, official_model_dir, open_model_dir
from .postprocess import Detections, postprocess
from .preprocess import Preprocessor
from .result import InstanceSegResult
from .spec import ModelSpec
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


class LocalPredictor:
    """Pre-processing, one backend, post-processing: what runs on the board."""

    def __init__(self, model: LocalModel, backend: str = "auto", threads: Optional[int] = None,
                 power_mode: Optional[str] = None):
        from .backends import create_backend

        self.model = model
        self.spec: ModelSpec = model.spec
        kind = backend if backend != "auto" else ("lite" if model.kind == "bundle" else "paddle")
        if kind == "lite" and model.kind != "bundle":
            raise ConfigError(f"backend 'lite' needs a bundle made by `edge export`, but {model.path} is an inference directory")
        if kind == "paddle" and model.kind != "inference_dir":
            raise ConfigError(f"backend 'paddle' needs an inference directory, but {model.path} is a Paddle Lite bundle")
        zoo_entry = MODELS.get(self.spec.model_name)
        mkldnn = zoo_entry.mkldnn if zoo_entry else True  # PaddleX turns MKLDNN off for some models
        self.backend = create_backend(kind, model.path, threads=threads, power_mode=power_mode, mkldnn=mkldnn)
        self.preprocess = Preprocessor(self.spec)
        self.name = self.backend.name

    def __call__(self, image: np.ndarray, threshold: float) -> Detections:
        t0 = time.perf_counter()
        feeds = self.preprocess(image)
        t1 = time.perf_counter()
        bbox, bbox_num, mask = self.backend.run(feeds)[:3]
        t2 = time.perf_counter()
        scale = feeds[self.spec.input_names[2]][0]
        detections = postprocess(bbox, bbox_num, mask, image.shape[:2], scale, self.spec, threshold)
        # seconds of the last call per stage, for `edge eval` and benchmarks
        self.last_stage_seconds = {"preprocess": t1 - t0, "model": t2 - t1, "postprocess": time.perf_counter() - t2}
        return detections


class FallbackPredictor:
    """Local inference first; the server when it fails, or while it is slower than a budget.

    `Serving.fallback: on_error`: a local BackendError / ModelError / MemoryError sends that image
    to the server. With `Serving.latency_budget_ms`, local latency is tracked (exponential moving
    average); while it is over the budget images go to the server, and every `PROBE_EVERY`-th
    image is still computed locally so that a recovered board takes its work back.
    """

    PROBE_EVERY = 10
    EMA_WEIGHT = 0.3

    def __init__(self, local: Any, remote: Any, latency_budget_ms: Optional[float] = None):
        self.local, self.remote = local, remote
        self.spec = getattr(local, "spec", None)
        self.name = f"{local.name} (fallback {remote.name})"
        self.budget_ms = float(latency_budget_ms) if latency_budget_ms else None
        self.local_ms: Optional[float] = None  # moving average of local latency
        self._since_probe = 0
        self._lock = threading.Lock()

    def __call__(self, image: np.ndarray, threshold: float) -> Detections:
        return self.run(image, threshold)[0]

    def _prefer_remote(self) -> bool:
        with self._lock:
            if self.budget_ms is None or self.local_ms is None or self.local_ms <= self.budget_ms:
                return False
            self._since_probe += 1
            if self._since_probe >= self.PROBE_EVERY:
                self._since_probe = 0
                return False
            return True

    def run(self, image: np.ndarray, threshold: float) -> Tuple[Detections, str]:
        if self._prefer_remote():
            return self.remote(image, threshold), self.remote.name
        start = time.perf_counter()
        try:
            detections = self.local(image, threshold)
        except (BackendError, ModelError, MemoryError) as err:
            logger.warning("local inference failed (%s); asking %s", err, self.remote.url)
            try:
                return self.remote(image, threshold), self.remote.name
            except RemoteError as remote_err:
                raise RemoteError(f"local inference failed ({err}) and so did the fallback: {remote_err}") from None
        elapsed_ms = (time.perf_counter() - start) * 1000.0
        with self._lock:
            self.local_ms = elapsed_ms if self.local_ms is None else (
                (1 - self.EMA_WEIGHT) * self.local_ms + self.EMA_WEIGHT * elapsed_ms)
        return detections, self.local.name


class InstanceSegPipeline:
    def __init__(self, config: Dict[str, Any], device: Optional[str] = None):
        self.config = config
        self.device = parse_device(device)
        module = module_config(config)
        self.threshold = module.get("threshold")
        self.predictor = self._make_predictor(module)
        self.spec = getattr(self.predictor, "spec", None)

    def _make_predictor(self, module: Dict[str, Any]):
        """Local, remote, or local with the server as fallback (`Serving.fallback`, SPEC.md §5)."""
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
            logger.warning("local model unavailable (%s); every image goes to %s", err, remote.url)
            return remote
        return FallbackPredictor(local, remote, serving.get("latency_budget_ms"))

    def _local_predictor(self, module: Dict[str, Any]) -> "LocalPredictor":
        name, model_dir = module.get("model_name"), module.get("model_dir")
        model = open_model_dir(Path(model_dir)) if model_dir else open_model_dir(official_model_dir(name))
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
            detections, computed_by = self._run(item.image, threshold)
            yield InstanceSegResult(item.input_path, item.page_index, detections.boxes, detections.masks,
                                    image=item.image, computed_by=computed_by)

    def _threshold(self, threshold: Optional[float]) -> float:
        if threshold is not None:
            return check_threshold(threshold)
        if self.threshold is not None:
            return check_threshold(self.threshold)
        return self.spec.draw_threshold if self.spec else 0.5

    def _run(self, image: np.ndarray, threshold: float) -> Tuple[Detections, str]:
        """The detections and the name of the predictor that computed them."""
        if isinstance(self.predictor, FallbackPredictor):
            return self.predictor.run(image, threshold)
        return self.predictor(image, threshold), self.predictor.name


def create_pipeline(pipeline: Union[str, Path] = PIPELINE_NAME, config: Optional[Dict[str, Any]] = None,
                    device: Optional[str] = None, use_hpip: bool = False) -> InstanceSegPipeline:
    """PaddleX's entry point. `config` overrides keys of the pipeline YAML (same nesting)."""
    if use_hpip:
        logger.warning("use_hpip has no effect here: the edge runtime has its own optimised engines")
    return InstanceSegPipeline(load_config(pipeline, config), device=device)
