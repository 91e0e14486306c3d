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
                 new_ir: bool = True, paddlex_config: bool = True, cut: Optional[str] = None):
        """`cut`: "solov2" for a SOLOv2 program: it is cut before its mask head's per-candidate part and the
        head runs per grid cell (edge/solov2.py): same outputs, several times faster. "rcnn_paste" for a
        MaskRCNN / Cascade program: it is cut before its full-image mask paste, and the masks it returns
        paste themselves only where they are read (edge/paste.py). A program of an unexpected structure
        runs whole (edge/backends/program_cut.py)."""
        try:
            from paddle import inference
        except ImportError as exc:
            raise BackendError(f"the paddle backend needs paddlepaddle ({exc}); pip install paddlepaddle==3.0.0") from None
        program = find_program(model_dir)
        with tempfile.TemporaryDirectory(prefix="edge-cut-") as workdir:  # a cut PIR program lives here until loaded
            pruned = self._cut(cut, program, model_dir, workdir) if cut else None
            if pruned is None:
                config = inference.Config(str(program), str(model_dir / PARAMS_FILE))
            elif isinstance(pruned[0], bytes):
                config = inference.Config()
                config.set_model_buffer(pruned[0], len(pruned[0]), pruned[1], len(pruned[1]))
            else:
                config = inference.Config(*pruned)
            self._configure(config, program, threads, mkldnn, new_ir, paddlex_config)
            try:
                self._predictor = inference.create_predictor(config)
            except Exception as exc:
                raise BackendError(f"Paddle Inference could not load {program}: {exc}") from None
        self.cut = cut if pruned is not None else None
        self.input_names = list(self._predictor.get_input_names())
        self.output_names = list(self._predictor.get_output_names())
        self.where = str(model_dir)

    @staticmethod
    def _cut(kind: str, program: Path, model_dir: Path, workdir: str):
        from .program_cut import cut_rcnn_program, cut_solov2_program

        try:
            if kind == "solov2":
                return cut_solov2_program(program, model_dir / PARAMS_FILE, workdir)
            if kind == "rcnn_paste":
                return cut_rcnn_program(program, model_dir / PARAMS_FILE)
            raise ValueError(f"unknown cut {kind!r}")
        except Exception as exc:  # an unexpected program: it still runs whole, as exported
            logger.warning("%s: program not cut for %s (%s); running it whole", model_dir, kind, exc)
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
        if self.cut == "solov2":  # category scores, kernels, mask feature -> the program's 4 outputs
            from ..solov2 import solov2_head

            return solov2_head(*outputs, feeds["im_shape"][0], feeds["scale_factor"][0])
        if self.cut == "rcnn_paste":  # bbox, bbox_num, 28x28 probabilities -> full-image masks pasted on demand
            from ..paste import PastedMasks

            bbox, bbox_num, probs = outputs
            origin = np.floor(feeds["im_shape"][0] / feeds["scale_factor"][0] + np.float32(0.5))
            return [bbox, bbox_num, PastedMasks(probs, np.asarray(bbox)[:len(probs), 2:6], (int(origin[0]), int(origin[1])))]
        return outputs
