"""Predictors: one image in, its detections out, with where they were computed.

Every way of computing a result — on this machine (`LocalPredictor`: pre-processing, one
engine, post-processing), on the server (`edge.remote.RemotePredictor`), or locally with the
server as fallback (`FallbackPredictor`) — is a `Predictor`, so the pipeline never asks which
one it holds.
"""
from __future__ import annotations

import logging
import threading
import time
from typing import Dict, Optional, Protocol

import numpy as np

from .errors import BackendError, ConfigError, ModelError, RemoteError
from .models import LocalModel
from .backends import Backend
from .postprocess import Detections, postprocess_outputs
from .preprocess import Preprocessor
from .spec import ModelSpec
from .zoo import MODELS

logger = logging.getLogger(__name__)


# post-processing steps of exported programs that we do faster ourselves, same results (edge/backends/program_cut.py)
_CUTS = {"SOLOv2": "solov2", "RCNN": "rcnn_paste"}


class Predictor(Protocol):
    name: str  # for logs: "lite", "paddle", "remote:<url>", ...
    spec: Optional[ModelSpec]  # None when the model is not known here (a remote one)

    def __call__(self, image: np.ndarray, threshold: float) -> Detections:
        """Detections of one BGR image; `computed_by` says which engine or server computed them."""


class LocalPredictor:
    """Pre-processing, one backend, post-processing: what runs on the board."""

    def __init__(self, model: LocalModel, backend: str = "auto", threads: Optional[int] = None,
                 power_mode: Optional[str] = None, engine: Optional[Backend] = None, as_paddlex: bool = True):
        """`engine`: an already-built backend to run instead of `backend` (e.g. ARM kernels under qemu).

        `as_paddlex`: an inference directory is configured and resized as PaddleX's predictor does, so that
        its results are PaddleX's (docs/DIFFERENCES.md). False: Paddle's default configuration and the
        bundles' portable resize, for comparing a program with the Lite bundle made from it (the exporter).
        """
        self.model = model
        self.spec: ModelSpec = model.spec
        if engine is None:
            engine = self._create_engine(model, backend, threads, power_mode, as_paddlex)
        self.backend = engine
        self.preprocess = Preprocessor(self.spec, portable_resize=model.kind == "bundle" or not as_paddlex)
        self.name = engine.name
        self.last_stage_seconds: Dict[str, float] = {}

    @staticmethod
    def _create_engine(model: LocalModel, backend: str, threads: Optional[int], power_mode: Optional[str],
                       as_paddlex: bool) -> Backend:
        from .backends import create_backend

        kind = backend if backend != "auto" else ("lite" if model.kind == "bundle" else "paddle")
        if kind == "lite" and model.kind != "bundle":
            raise ConfigError(f"backend 'lite' needs a bundle made by `edge export`, but {model.path} is an inference directory")
        if kind == "paddle" and model.kind != "inference_dir":
            raise ConfigError(f"backend 'paddle' needs an inference directory, but {model.path} is a Paddle Lite bundle")
        zoo_entry = MODELS.get(model.spec.model_name)
        mkldnn = zoo_entry.mkldnn if zoo_entry else False  # PaddleX 3.0.0 runs every model without MKLDNN on CPU
        # PaddleX runs PP-YOLOE_seg's programs on the old IR (its NEWIR_BLOCKLIST); the demo model is one too
        new_ir = zoo_entry.new_ir if zoo_entry else not model.spec.model_name.startswith("PP-YOLOE_seg")
        return create_backend(kind, model.path, threads=threads, power_mode=power_mode, mkldnn=mkldnn, new_ir=new_ir,
                              paddlex_config=as_paddlex, cut=_CUTS.get(model.spec.arch) if as_paddlex else None)

    def __call__(self, image: np.ndarray, threshold: float) -> Detections:
        t0 = time.perf_counter()
        feeds = self.preprocess(image)
        t1 = time.perf_counter()
        outputs = self.backend.run(feeds)
        t2 = time.perf_counter()
        scale = feeds[self.spec.input_names[2]][0]
        detections = postprocess_outputs(outputs, image.shape[:2], scale, self.spec, threshold)
        detections.computed_by = self.name
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

    def __init__(self, local: Predictor, remote: Predictor, latency_budget_ms: Optional[float] = None):
        self.local, self.remote = local, remote
        self.spec = local.spec
        self.name = f"{local.name} (fallback {remote.name})"
        self.budget_ms = float(latency_budget_ms) if latency_budget_ms else None
        self.local_ms: Optional[float] = None  # moving average of local latency
        self._since_probe = 0
        self._lock = threading.Lock()

    def _prefer_remote(self) -> bool:
        with self._lock:
            if self.budget_ms is None or self.local_ms is None or self.local_ms <= self.budget_ms:
                return False
            self._since_probe += 1
            if self._since_probe >= self.PROBE_EVERY:
                self._since_probe = 0
                return False
            return True

    def __call__(self, image: np.ndarray, threshold: float) -> Detections:
        if self._prefer_remote():
            return self.remote(image, threshold)
        start = time.perf_counter()
        try:
            detections = self.local(image, threshold)
        except (BackendError, ModelError, MemoryError) as err:
            logger.warning("local inference failed (%s); asking %s", err, self.remote.name)
            try:
                return self.remote(image, threshold)
            except RemoteError as remote_err:
                raise RemoteError(f"local inference failed ({err}) and so did the fallback: {remote_err}") from None
        elapsed_ms = (time.perf_counter() - start) * 1000.0
        with self._lock:
            self.local_ms = elapsed_ms if self.local_ms is None else (
                (1 - self.EMA_WEIGHT) * self.local_ms + self.EMA_WEIGHT * elapsed_ms)
        return detections
