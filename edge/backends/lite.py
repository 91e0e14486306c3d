"""Paddle Lite backend: runs a `.nb` model, mirroring the on-device `MobileConfig` API.

The x86 build of the `paddlelite` wheel has no `set_threads` / `set_power_mode` (the ARM build
has them), so both are feature-detected: asked for and missing gives a warning, not a crash.
"""
from __future__ import annotations

import logging
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import List, Mapping, Optional, Union

import numpy as np

from ..errors import BackendError

logger = logging.getLogger(__name__)

POWER_MODES = ("LITE_POWER_HIGH", "LITE_POWER_LOW", "LITE_POWER_FULL", "LITE_POWER_NO_BIND",
               "LITE_POWER_RAND_HIGH", "LITE_POWER_RAND_LOW")


def _import_lite():
    try:
        import numpy

        if int(numpy.__version__.split(".")[0]) >= 2:  # measured: garbage inputs, NaN outputs, no error
            raise BackendError(f"paddlelite 2.13 needs numpy < 2 (found {numpy.__version__}): pip install 'numpy<2'")
        from paddlelite import lite
    except ImportError as exc:
        raise BackendError(
            f"the lite backend needs the paddlelite package ({exc}): on x86_64 with CPython <= 3.10, "
            "pip install paddlelite==2.13rc0; on aarch64 (Raspberry Pi, Jetson), the project's own wheel: pip install "
            "--find-links third_party/paddlelite-aarch64 paddlelite==2.13rc0 (README: Raspberry Pi / Jetson)") from None
    return lite


_PROBE = """
import sys
from paddlelite import lite
config = lite.MobileConfig()
config.set_model_from_file(sys.argv[1])
lite.create_paddle_predictor(config)
"""


def probe_model_file(path: Path, timeout: float = 300.0) -> None:
    """Load a .nb once in a child process: Paddle Lite aborts the whole process on a bad model
    (corrupt, truncated, or made for another target), so that must not happen in ours."""
    proc = subprocess.run([sys.executable, "-c", _PROBE, str(path)], capture_output=True, text=True, timeout=timeout)
    if proc.returncode != 0:
        lines = [l for l in proc.stderr.splitlines() if l.strip() and "Warning" not in l][-4:]
        how = f"signal {-proc.returncode}" if proc.returncode < 0 else f"exit code {proc.returncode}"
        raise BackendError(
            f"Paddle Lite could not load {path} ({how}): {' | '.join(lines) or 'no message'}. Is it a complete .nb made by "
            f"paddle_lite_opt {lite_version()} for this target (x86 .nb on x86 hosts, arm .nb on ARM boards)?"
        )


class LiteBackend:
    name = "lite"

    def __init__(self, model: Union[Path, bytes], *, threads: Optional[int] = None, power_mode: Optional[str] = None,
                 probe: bool = True):
        lite = _import_lite()
        config = lite.MobileConfig()
        where = "<model buffer>" if isinstance(model, (bytes, bytearray)) else str(model)
        if isinstance(model, (bytes, bytearray)):
            if probe:
                with tempfile.NamedTemporaryFile(suffix=".nb") as tmp:
                    tmp.write(model)
                    tmp.flush()
                    probe_model_file(Path(tmp.name))
            config.set_model_from_buffer(bytes(model))
        else:
            if not Path(model).is_file():
                raise BackendError(f"Paddle Lite model {where} does not exist; run `edge export` to make one")
            if probe:
                probe_model_file(Path(model))
            config.set_model_from_file(str(model))
        if threads is not None:
            self._set_if_supported(config, "set_threads", int(threads))
        if power_mode is not None:
            if power_mode not in POWER_MODES:
                raise BackendError(f"unknown power mode {power_mode!r}; choose one of {', '.join(POWER_MODES)}")
            self._set_if_supported(config, "set_power_mode", getattr(lite.PowerMode, power_mode))
        try:
            self._predictor = lite.create_paddle_predictor(config)
        except Exception as exc:  # Lite raises RuntimeError / generic errors for bad buffers
            raise BackendError(
                f"Paddle Lite could not load {where}: {exc}. Is it a .nb made by paddle_lite_opt {lite_version()} "
                "for this target (x86 .nb on x86 hosts, arm .nb on ARM boards)?"
            ) from None
        self.input_names = list(self._predictor.get_input_names())
        self.output_names = list(self._predictor.get_output_names())
        self.where = where

    @staticmethod
    def _set_if_supported(config, method: str, value) -> None:
        if hasattr(config, method):
            getattr(config, method)(value)
        else:
            logger.warning("this paddlelite build has no MobileConfig.%s (x86 builds lack it); ignored", method)

    def run(self, feeds: Mapping[str, np.ndarray]) -> List[np.ndarray]:
        for name in self.input_names:
            if name not in feeds:
                raise BackendError(f"{self.where}: missing input {name!r} (model inputs: {self.input_names})")
            self._predictor.get_input_by_name(name).from_numpy(np.ascontiguousarray(feeds[name]))
        try:
            self._predictor.run()
        except Exception as exc:
            raise BackendError(f"Paddle Lite failed running {self.where}: {exc}") from None
        return [np.array(self._predictor.get_output_by_name(n).numpy(), copy=True) for n in self.output_names]


def lite_version() -> str:
    try:
        from importlib.metadata import version

        return version("paddlelite")
    except Exception:
        return "unknown"
