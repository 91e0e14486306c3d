"""The ARM verification step: the shipped ARM `.nb`, run on ARM kernels (export/emulator.py), against
the x86 Paddle Lite FP32 bundle, both through the runtime's own pre/post-processing.

- FP32 bundles: `fp32_arm_vs_x86_lite` — every instance should match (boxes within 1e-2 px,
  masks >= 99 % equal): ARM and x86 FP32 kernels differ only in summation order.
- INT8 bundles: `int8_arm_vs_fp32` — agreement with FP32, and mask AP of both on the labelled
  held-out data when the source has it. This is the INT8 accuracy a board will see; the manifest's
  `int8_program_vs_fp32` is Paddle's simulated-quantization program, not ARM's INT8 kernels.
One thread by default: Lite's INT8 kernels with 2 threads gave run-to-run different outputs under
qemu (see README, "Raspberry Pi / Jetson").
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Dict, Optional, Sequence

from edge.models import open_model_dir
from edge.predictor import LocalPredictor

from .emulator import ArmEmulatorBackend
from .verify import agreement

logger = logging.getLogger(__name__)


def arm_predictor(arm_bundle: Path, *, threads: int = 1, cpu: Optional[str] = None) -> LocalPredictor:
    """A runtime predictor for an ARM bundle whose engine is Lite's ARM kernels under qemu."""
    model = open_model_dir(arm_bundle)
    engine = ArmEmulatorBackend(Path(arm_bundle) / "model.nb", model.spec.input_names, threads=threads, cpu=cpu)
    return LocalPredictor(model, engine=engine)


def verify_arm(arm_bundle: Path, x86_fp32_bundle: Path, images: Sequence[Path], *, int8: bool,
               threshold: float = 0.3, eval_data: Optional[Path] = None, threads: int = 1,
               cpu: Optional[str] = None) -> Dict[str, Any]:
    """ARM kernels vs x86 Lite FP32; returns the manifest entry (see the module docstring)."""
    reference = LocalPredictor(open_model_dir(x86_fp32_bundle), "lite")
    candidate = arm_predictor(arm_bundle, threads=threads, cpu=cpu)
    names = ("fp32", "int8_arm") if int8 else ("x86_lite", "arm")
    result = agreement(reference, candidate, images, threshold, eval_data if int8 else None, names)
    result.update(engine=candidate.name, threads=threads, reference="Paddle Lite x86 FP32")
    logger.info("ARM kernels (%s) vs x86 Lite FP32: %s", candidate.name, result)
    return result
