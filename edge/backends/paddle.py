"""Paddle Inference backend: an inference directory (`inference.pdmodel` or PIR `inference.json`)."""
from __future__ import annotations

import logging
import tempfile
from pathlib import Path
from typing import List, Mapping, Optional

import numpy as np

from ..errors import BackendError
from ..inference_dir import PARAMS_FILE, find_program

logger = logging.getLogger(__name__)


def _is_quantized(program: Path) -> bool:
    """Whether a program holds quantize/dequantize ops (op type names are plain bytes in both formats)."""
    return b"quantize_linear" in program.read_bytes()


class PaddleBackend:
    name = "paddle"

    def __init__(self, model_dir: Path, *, threads: Optional[int] = None, mkldnn: Optional[bool] = None,
                 new_ir: bool = True, paddlex_config: bool = True, solov2: bool = False):
        """`solov2`: the directory holds a SOLOv2 program; it is cut before its mask head's
        per-candidate part and the head runs per grid cell (edge/solov2.py): same outputs, several times faster."""
        try:
            from paddle import inference
        except ImportError as exc:
            raise BackendError(f"the paddle backend needs paddlepaddle ({exc}); pip install paddlepaddle==3.0.0") from None
        program = find_program(model_dir)
        self._solov2_head = None
        with tempfile.TemporaryDirectory(prefix="edge-solov2-") as workdir:  # a cut PIR program lives here until loaded
            cut = self._cut_solov2(program, model_dir, workdir) if solov2 else None
            if cut is None:
                config = inference.Config(str(program), str(model_dir / PARAMS_FILE))
            elif isinstance(cut[0], bytes):
                config = inference.Config()
                config.set_model_buffer(cut[0], len(cut[0]), cut[1], len(cut[1]))
            else:
                config = inference.Config(*cut)
            self._configure(config, program, threads, mkldnn, new_ir, paddlex_config)
            try:
                self._predictor = inference.create_predictor(config)
            except Exception as exc:
                raise BackendError(f"Paddle Inference could not load {program}: {exc}") from None
        if cut is not None:
            from ..solov2 import solov2_head

            self._solov2_head = solov2_head
        self.input_names = list(self._predictor.get_input_names())
        self.output_names = list(self._predictor.get_output_names())
        self.where = str(model_dir)

    @staticmethod
    def _cut_solov2(program: Path, model_dir: Path, workdir: str):
        from .solov2_cut import cut_solov2_program

        try:
            return cut_solov2_program(program, model_dir / PARAMS_FILE, workdir)
        except Exception as exc:  # an unexpected program: it still runs whole, as exported
            logger.warning("%s: SOLOv2 program not cut (%s); running it whole", model_dir, exc)
            return None

    @staticmethod
    def _configure(config, program: Path, threads: Optional[int], mkldnn: Optional[bool], new_ir: bool,
                   paddlex_config: bool) -> None:
        config.disable_gpu()
        config.disable_glog_info()
        if threads:
            config.set_cpu_math_library_num_threads(int(threads))
        if mkldnn:
            config.enable_mkldnn()
            config.set_mkldnn_cache_capacity(-1)
        else:
            config.disable_mkldnn()
        # PaddleX 3.0.0's CPU configuration: a legacy program is translated to PIR and run with the new
        # executor at optimisation level 3. The old executor runs MaskRCNN's programs 2x slower and
        # its fused kernels round differently, so the results would not be PaddleX's either.
        # `paddlex_config=False` keeps Paddle's defaults: the exporter compares a program with its Lite bundle
        # to 1e-3 px, and level-3 fusion moves seeded networks by a few 1e-3 px. Never for the exporter's
        # simulated-INT8 programs (quantize/dequantize ops): those passes fold the pairs into int8 weights
        # that float kernels then refuse ("float32 ... int8").
        if paddlex_config and not _is_quantized(program):
            if hasattr(config, "enable_new_ir"):
                config.enable_new_ir(new_ir)
            if hasattr(config, "enable_new_executor"):
                config.enable_new_executor()
            config.set_optimization_level(3)
            config.enable_memory_optim()

    def run(self, feeds: Mapping[str, np.ndarray]) -> List[np.ndarray]:
        for name in self.input_names:
            if name not in feeds:
                raise BackendError(f"{self.where}: missing input {name!r} (model inputs: {self.input_names})")
            self._predictor.get_input_handle(name).copy_from_cpu(np.ascontiguousarray(feeds[name]))
        try:
            self._predictor.run()
        except Exception as exc:
            raise BackendError(f"Paddle Inference failed running {self.where}: {exc}") from None
        outputs = [self._predictor.get_output_handle(n).copy_to_cpu() for n in self.output_names]
        if self._solov2_head is not None:  # category scores, kernels, mask feature -> the program's 4 outputs
            return self._solov2_head(*outputs, feeds["im_shape"][0], feeds["scale_factor"][0])
        return outputs
