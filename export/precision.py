"""What precision an export asks for: one value, from which names, opt's options and records follow."""
from __future__ import annotations

from enum import Enum
from typing import Any, Dict, Optional

from edge.errors import ExportError


class Precision(str, Enum):
    FP32 = "fp32"
    INT8 = "int8"  # calibrated post-training quantization: real int8 kernels on ARM
    FP16 = "fp16"  # fp16 kernels (ARMv8.2 CPUs)
    WEIGHT_ONLY_INT8 = "weight-only-int8"  # opt stores weights as int8, computes in FP32
    WEIGHT_ONLY_INT16 = "weight-only-int16"

    @classmethod
    def from_flags(cls, int8: bool = False, fp16: bool = False, weight_only: Optional[str] = None) -> "Precision":
        """The CLI's --int8 / --fp16 / --weight-only {int8,int16}, which exclude each other."""
        if sum(bool(flag) for flag in (int8, fp16, weight_only)) > 1:
            raise ExportError("choose one of --int8, --fp16 and --weight-only")
        if weight_only:
            return cls(f"weight-only-{weight_only}")
        return cls.INT8 if int8 else cls.FP16 if fp16 else cls.FP32

    @property
    def weight_only(self) -> Optional[str]:
        """"int8" / "int16" for opt's weight-only quantization, else None."""
        return self.value.rsplit("-", 1)[1] if self.value.startswith("weight-only-") else None

    @property
    def bundle_suffix(self) -> str:
        """Part of the bundle name: "", "-int8", "-fp16", "-woint8", "-woint16"."""
        if self is Precision.FP32:
            return ""
        return f"-wo{self.weight_only}" if self.weight_only else f"-{self.value}"

    @property
    def compute(self) -> str:
        """The arithmetic the kernels do (the manifest's `precision`): weight-only computes in FP32."""
        return "fp32" if self.weight_only else self.value

    @property
    def title_suffix(self) -> str:
        return "" if self is Precision.FP32 else f" ({self.value.upper()})"

    def describe(self) -> str:
        """In words, for logs."""
        if self.weight_only:
            return (f"weight-only {self.weight_only}: weights stored as {self.weight_only}, dequantized to FP32 "
                    "at load, FP32 compute (not int8 inference)")
        if self is Precision.FP16:
            return "fp16 kernels (ARMv8.2 CPUs with fp16 arithmetic)"
        return "as the program is (FP32, or int8 where the program was PTQ-quantized)"

    def record(self) -> Optional[Dict[str, Any]]:
        """The manifest's `quantization` for precisions that opt makes (PTQ writes its own record)."""
        if self.weight_only:
            return {"scheme": f"weight-only-{self.weight_only}",
                    "note": "weights stored as integers and turned back into FP32 at load time: a smaller file, FP32 compute"}
        if self is Precision.FP16:
            return {"scheme": "fp16", "note": "FP16 kernels for ARMv8.2 CPUs"}
        return None
