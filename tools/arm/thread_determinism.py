"""Are Paddle Lite's ARM kernels deterministic with several threads? Runs one bundle N times per setting
under qemu and counts distinct outputs:

    python tools/arm/thread_determinism.py BUNDLE IMAGE [--runs 5]

Settings: 1 thread; 2 threads; 2 threads with the emulator pinned to ONE host CPU. qemu-user runs each
guest thread's instructions exactly and the x86 host's memory order (TSO) is stronger than ARM's, so
emulation adds no reordering of its own: outputs that still vary with both guest threads time-sliced
on one host CPU come from the program itself (a race or a reduction whose order depends on thread
timing), i.e. from Lite, not from the emulator.
"""
from __future__ import annotations

import argparse
import hashlib
import sys
from pathlib import Path

import cv2

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from edge.models import open_model_dir  # noqa: E402
from edge.preprocess import Preprocessor  # noqa: E402
from export.emulator import run_nb  # noqa: E402

SETTINGS = {"1 thread": dict(threads=1), "2 threads": dict(threads=2),
            "2 threads, 1 host CPU": dict(threads=2, host_cpus="0")}


def distinct_outputs(bundle: Path, image: Path, runs: int) -> dict:
    feeds = Preprocessor(open_model_dir(bundle).spec)(cv2.imread(str(image)))
    counts = {}
    for name, setting in SETTINGS.items():
        digests = {hashlib.sha256(b"".join(o.tobytes() for o in run_nb(bundle / "model.nb", feeds, **setting))).hexdigest()
                   for _ in range(runs)}
        counts[name] = len(digests)
        print(f"{bundle.name}: {name}: {len(digests)} distinct output(s) in {runs} runs", flush=True)
    return counts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("bundle", type=Path)
    parser.add_argument("image", type=Path)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    distinct_outputs(args.bundle, args.image, args.runs)


if __name__ == "__main__":
    main()
