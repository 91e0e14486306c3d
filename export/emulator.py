"""ARM kernels on an x86 host: the project's static aarch64 `.nb` runner under `qemu-aarch64-static`.

The runner (tools/arm/runner/lite_runner.cc, built by tools/arm/build.sh and committed under
third_party/paddlelite-aarch64/) links Paddle Lite's light API with every ARM kernel, so a bundle
run here executes the same kernels as on a board. Lite picks its INT8 path from the CPU it reads
in /proc/cpuinfo; `cpu` selects a qemu CPU model plus a matching fake /proc/cpuinfo (seen by the
runner through qemu's `-L` prefix), so the generic NEON path and the dotprod path can both be run.

`ArmEmulatorBackend` has the runtime's Backend interface (`input_names`, `run(feeds)`), so the
runtime's own pre/post-processing runs around ARM kernels exactly as on the device.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Mapping, Optional, Sequence

import numpy as np

from edge.errors import BackendError

REPO_ROOT = Path(__file__).resolve().parents[1]
RUNTIME_DIR = REPO_ROOT / "third_party" / "paddlelite-aarch64"
RUNNER_ENV = "EDGE_ARM_RUNNER"   # another runner binary (e.g. a rebuilt one)


@dataclass(frozen=True)
class CpuModel:
    qemu_cpu: str
    part: int        # the `CPU part` Lite looks up (lite/core/device_info.cc)
    features: str


# generic: Cortex-A53 (Pi 3/Zero 2, no dotprod); a72: Pi 4; dotprod: an A78-class core (Orin, Pi 5 has A76
# which Lite 2.13 does not know by part number, so it is reported as an A78 to reach the same INT8 path).
CPUS: Dict[str, CpuModel] = {
    "generic": CpuModel("cortex-a53", 0xD03, "fp asimd evtstrm crc32 cpuid"),
    "a72": CpuModel("cortex-a72", 0xD08, "fp asimd evtstrm crc32 cpuid"),
    "dotprod": CpuModel("cortex-a76", 0xD41, "fp asimd evtstrm crc32 atomics fphp asimdhp cpuid asimdrdm lrcpc dcpop asimddp"),
}


def runner_path() -> Path:
    return Path(os.environ.get(RUNNER_ENV) or RUNTIME_DIR / "lite_runner")


def qemu_path() -> Optional[str]:
    return shutil.which("qemu-aarch64-static") or shutil.which("qemu-aarch64")


def unavailable_reason() -> Optional[str]:
    """Why ARM bundles cannot be run here (None when they can)."""
    if qemu_path() is None:
        return "qemu-aarch64-static is not installed (Debian/Ubuntu: apt-get install qemu-user-static)"
    runner = runner_path()
    if not runner.is_file():
        return f"the aarch64 runner {runner} is missing (rebuild: tools/arm/build.sh, or set {RUNNER_ENV})"
    if not os.access(runner, os.X_OK):
        return f"the aarch64 runner {runner} is not executable (chmod +x it)"
    return None


def _fake_proc(root: Path, cpu: CpuModel) -> Path:
    """A prefix holding /proc/cpuinfo for `cpu`; Lite aborts unless it lists exactly nproc processors."""
    cpuinfo = "".join(
        f"processor\t: {i}\nBogoMIPS\t: 50.00\nFeatures\t: {cpu.features}\nCPU implementer\t: 0x41\n"
        f"CPU architecture: 8\nCPU variant\t: 0x1\nCPU part\t: {cpu.part:#x}\nCPU revision\t: 0\n\n"
        for i in range(os.cpu_count() or 1))
    (root / "proc").mkdir(parents=True, exist_ok=True)
    (root / "proc" / "cpuinfo").write_text(cpuinfo)
    return root


def run_nb(nb_file: Path, feeds: Mapping[str, np.ndarray], *, threads: int = 1, cpu: Optional[str] = None,
           host_cpus: Optional[str] = None, timeout: float = 600.0) -> List[np.ndarray]:
    """Run one batch of `nb_file` on ARM kernels; returns the outputs in the program's order.
    `host_cpus` pins the emulator to host CPUs (taskset list, e.g. "0") to tell emulation from Lite."""
    reason = unavailable_reason()
    if reason:
        raise BackendError(f"cannot run ARM bundles here: {reason}")
    if cpu is not None and cpu not in CPUS:
        raise BackendError(f"unknown emulated CPU {cpu!r}; choose one of {', '.join(CPUS)}")
    with tempfile.TemporaryDirectory(prefix="edge-arm-") as scratch:
        work = Path(scratch)
        args = []
        for i, (name, array) in enumerate(feeds.items()):
            path = work / f"in{i}.npy"
            np.save(path, np.ascontiguousarray(array))
            args.append(f"{name}={path}")
        command = (["taskset", "-c", host_cpus] if host_cpus else []) + [qemu_path()]
        if cpu is not None:
            command += ["-cpu", CPUS[cpu].qemu_cpu, "-L", str(_fake_proc(work / "prefix", CPUS[cpu]))]
        command += [str(runner_path()), str(Path(nb_file).resolve()), str(work), "--threads", str(threads), *args]
        try:
            proc = subprocess.run(command, capture_output=True, text=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            raise BackendError(f"the ARM run of {nb_file} took over {timeout:.0f} s under qemu; stopped") from None
        if proc.returncode != 0:
            tail = " | ".join(line for line in proc.stderr.splitlines()[-4:] if line.strip())
            raise BackendError(f"Paddle Lite (aarch64, qemu) could not run {nb_file}: exit {proc.returncode}: {tail or 'no message'}")
        count = len(json.loads(proc.stdout.strip().splitlines()[-1])["outputs"])
        return [np.load(work / f"out{i}.npy") for i in range(count)]


class ArmEmulatorBackend:
    """The runtime's Backend interface over `run_nb`: a bundle's ARM `.nb` as the engine."""

    def __init__(self, nb_file: Path, input_names: Sequence[str], *, threads: int = 1, cpu: Optional[str] = None):
        self.nb_file, self.input_names, self.threads, self.cpu = Path(nb_file), list(input_names), threads, cpu
        self.name = f"lite-arm-qemu{'-' + cpu if cpu else ''}"

    def run(self, feeds: Mapping[str, np.ndarray]) -> List[np.ndarray]:
        missing = [n for n in self.input_names if n not in feeds]
        if missing:
            raise BackendError(f"{self.nb_file}: missing inputs {missing} (model inputs: {self.input_names})")
        return run_nb(self.nb_file, {n: feeds[n] for n in self.input_names}, threads=self.threads, cpu=self.cpu)
