"""Save an edge network with seeded random weights as a legacy inference directory (for CI and benchmarks).

    python -m tools.seeded_network PP-YOLOE_seg-S build/ci/src/PP-YOLOE_seg-S [--size 640 640] [--seed 0]

Speed and memory do not depend on the weights' values, and official weights cannot be downloaded
everywhere; `edge export --model-dir <out>` then exports it like any inference directory.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Optional, Sequence

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


def seeded_program(network: str, out: Path, size: Sequence[int] = (640, 640), seed: int = 0,
                   graph: str = "edge") -> Path:
    """The network's program with weights drawn from `seed`, saved in `out`."""
    import export  # noqa: F401  (legacy programs: before paddle is imported)
    import paddle

    from export.networks import export_network

    paddle.seed(seed)
    return export_network(network, out, graph=graph, input_size=tuple(size))


def main(argv: Optional[Sequence[str]] = None) -> int:
    from export.networks import NETWORKS

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("network", choices=NETWORKS)
    parser.add_argument("out", type=Path)
    parser.add_argument("--size", type=int, nargs=2, default=(640, 640), metavar=("H", "W"))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--graph", choices=["edge", "reference"], default="edge")
    args = parser.parse_args(argv)

    print(seeded_program(args.network, args.out, args.size, args.seed, args.graph))
    return 0


if __name__ == "__main__":
    sys.exit(main())
