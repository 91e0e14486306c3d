"""What an ELF file needs from the system: shared libraries (DT_NEEDED) and the newest glibc symbol version.

Uses binutils' `readelf`, which reads ELF of any architecture, so the aarch64 files can be checked on x86.
"""
from __future__ import annotations

import re
import subprocess
from pathlib import Path
from typing import List, Tuple

# Libraries every glibc-based aarch64 Linux has (the manylinux policy's list, trimmed to what Lite uses).
SYSTEM_LIBRARIES = {"libc.so.6", "libm.so.6", "libpthread.so.0", "libdl.so.2", "librt.so.1",
                    "ld-linux-aarch64.so.1"}


def _readelf(*args: str) -> str:
    return subprocess.run(["readelf", "--wide", *args], check=True, capture_output=True, text=True).stdout


def machine(path: Path) -> str:
    return re.search(r"Machine:\s+(.+)", _readelf("-h", str(path))).group(1).strip()


def needed(path: Path) -> List[str]:
    return re.findall(r"\(NEEDED\)\s+Shared library: \[(.+?)\]", _readelf("-d", str(path)))


def glibc_floor(path: Path) -> Tuple[int, int]:
    """The newest GLIBC_x.y version the file references ((0, 0) for a static executable)."""
    versions = {tuple(int(p) for p in v.split(".")[:2])
                for v in re.findall(r"Name: GLIBC_([0-9.]+)", _readelf("-V", str(path)))}
    return max(versions, default=(0, 0))
