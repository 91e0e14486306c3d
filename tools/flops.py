"""Multiply-accumulates of a saved inference program, counted op by op from its ProgramDesc.

    python -m tools.flops --json docs/flops.json   # both edge networks at 640x640, ResNet-50, board estimates
    python -m tools.flops --size 320 320 --json flops.json
    python -m tools.flops --model-dir DIR       # any legacy inference directory

The edge graphs of PP-YOLOE_seg-S and Mask-RT-DETR-S are built with seeded random weights (the
count does not depend on the values) and saved as the programs `edge export` converts; then every
op with weights or a matrix product is counted from the shapes recorded in the program:

  conv2d / depthwise_conv2d   N·Cout·Hout·Wout · (Cin/groups)·kh·kw
  conv2d_transpose            N·Cin·Hin·Win · (Cout/groups)·kh·kw
  matmul_v2 / matmul / bmm    batch · M · N · K (transposes applied)
  mul / fc                    rows · K · N

Element-wise ops, activations, pooling, normalisation and resizes are listed by count, not by
cost (they are memory-bound: a few percent of the arithmetic). A dimension the program leaves
open (-1, e.g. the number of kept candidates) is counted as 1 and the op is reported as
`open_shape_ops`, so a reader knows which part the figure leaves out. FLOPs = 2 × MACs.
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
from collections import Counter
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

NETWORKS = ("PP-YOLOE_seg-S", "Mask-RT-DETR-S")
CONV = ("conv2d", "depthwise_conv2d", "fused_conv2d")
MATMUL = ("matmul_v2", "matmul", "bmm")


def _attr(op: Any, name: str, default: Any = None) -> Any:
    for attr in op.attrs:
        if attr.name == name:
            for field in ("i", "b", "f", "s", "l"):
                if attr.HasField(field):
                    return getattr(attr, field)
            if attr.ints:
                return list(attr.ints)
    return default


def _arg(op: Any, slot: str, outputs: bool = False) -> Optional[str]:
    for var in (op.outputs if outputs else op.inputs):
        if var.parameter == slot and var.arguments:
            return var.arguments[0]
    return None


def _prod(values: Sequence[int]) -> int:
    out = 1
    for v in values:
        out *= v
    return out


def count_program(model_file: Path) -> Dict[str, Any]:
    """MACs per op type of a legacy `inference.pdmodel`, and the ops whose cost is not counted."""
    from paddle.base.proto import framework_pb2

    desc = framework_pb2.ProgramDesc()
    desc.ParseFromString(Path(model_file).read_bytes())
    shapes: Dict[str, List[int]] = {}
    for block in desc.blocks:
        for var in block.vars:
            if var.type.type == framework_pb2.VarType.DENSE_TENSOR:  # Paddle 3's name for LoD tensors
                shapes[var.name] = list(var.type.dense_tensor.tensor.dims)

    macs: Counter = Counter()
    counted: Counter = Counter()
    uncounted: Counter = Counter()
    open_shape_ops: Counter = Counter()

    def shape(name: Optional[str]) -> Tuple[List[int], bool]:
        dims = shapes.get(name or "", [])
        return [d if d > 0 else 1 for d in dims], any(d <= 0 for d in dims) or not dims

    for block in desc.blocks:
        for op in block.ops:
            kind = op.type
            if kind in CONV or kind == "conv2d_transpose":
                (out, open_out), (w, _) = shape(_arg(op, "Output", True)), shape(_arg(op, "Filter"))
                (x, open_in) = shape(_arg(op, "Input"))
                if len(out) != 4 or len(w) != 4:
                    uncounted[kind] += 1
                    continue
                if kind == "conv2d_transpose":  # filter [Cin, Cout/groups, kh, kw]
                    value = _prod(x) * w[1] * w[2] * w[3]
                else:  # filter [Cout, Cin/groups, kh, kw]
                    value = _prod(out) * w[1] * w[2] * w[3]
                open_ = open_out or open_in
            elif kind in MATMUL:
                (x, open_x), (y, open_y) = shape(_arg(op, "X")), shape(_arg(op, "Y"))
                if len(x) < 2 or len(y) < 2:
                    uncounted[kind] += 1
                    continue
                tx = bool(_attr(op, "trans_x", _attr(op, "transpose_X", False)))
                ty = bool(_attr(op, "trans_y", _attr(op, "transpose_Y", False)))
                m, k = (x[-1], x[-2]) if tx else (x[-2], x[-1])
                n = y[-2] if ty else y[-1]
                batch = max(_prod(x[:-2]), _prod(y[:-2]))
                value, open_ = batch * m * n * k, open_x or open_y
            elif kind in ("mul", "fc"):
                (x, open_x), (y, _) = shape(_arg(op, "X") or _arg(op, "Input")), shape(_arg(op, "Y") or _arg(op, "W"))
                if len(y) != 2:
                    uncounted[kind] += 1
                    continue
                value, open_ = (_prod(x) // max(y[0], 1)) * y[0] * y[1], open_x
            else:
                if kind not in ("feed", "fetch"):
                    uncounted[kind] += 1
                continue
            macs[kind] += value
            counted[kind] += 1
            if open_:
                open_shape_ops[kind] += 1
    total = sum(macs.values())
    return {"macs": total, "gmacs": total / 1e9, "gflops": 2 * total / 1e9,
            "macs_by_op": dict(macs), "counted_ops": dict(counted), "open_shape_ops": dict(open_shape_ops),
            "uncounted_ops": dict(sorted(uncounted.items(), key=lambda kv: -kv[1]))}


def network_program(name: str, out_dir: Path, size: Tuple[int, int]) -> Path:
    """The edge graph of a network, seeded random weights, saved as a legacy inference directory."""
    from tools.seeded_network import seeded_program

    return seeded_program(name, out_dir, size)


def resnet50_program(out_dir: Path) -> Path:
    """paddle.vision's ResNet-50 at 224x224: the network the published board figures below measured."""
    import export  # noqa: F401
    import paddle

    net = paddle.vision.models.resnet50()
    net.eval()
    static = paddle.jit.to_static(net, input_spec=[paddle.static.InputSpec([1, 3, 224, 224], "float32", "x")],
                                  full_graph=True)
    paddle.jit.save(static, str(Path(out_dir) / "inference"))
    return Path(out_dir)


# Published ResNet-50 (224x224) latencies per board, in ms: (board, CPU, engine and threads, FP32, INT8,
# source). They are figures for a comparable dense convolutional network, not for our models.
# ncnn uses FP16 arithmetic on ARMv8.2 cores (A76, A78, X1) even for FP32 models.
NCNN = "https://github.com/Tencent/ncnn/blob/master/benchmark/README.md"
LITE = "https://github.com/PaddlePaddle/Paddle-Lite/blob/develop/docs/performance/benchmark.md (v2.11)"
ANCHORS = (
    ("Raspberry Pi 4 B", "4x Cortex-A72 1.8 GHz", "ncnn, 4 threads", 262.83, 196.65, NCNN),
    ("Raspberry Pi 4 class (RK3399 A72 core)", "Cortex-A72 1.8 GHz", "Paddle Lite, 1 thread", 616.68, 473.00, LITE),
    ("Raspberry Pi 5", "4x Cortex-A76 2.4 GHz", "ncnn, 4 threads (FP16 arithmetic)", 46.21, 40.75, NCNN),
    ("Jetson Orin Nano (CPU)", "6x Cortex-A78AE", "ncnn, 6 threads (FP16 arithmetic)", 39.26, 29.93, NCNN),
    ("Snapdragon 888", "X1 + 3x A78 + 4x A55", "ncnn, 8 threads, big cores (FP16 arithmetic)", 29.64, 25.16, NCNN),
    ("Snapdragon 865", "A77 2.84 GHz", "Paddle Lite, 1 thread", 160.97, 64.50, LITE),
)


def estimates(counts: Dict[str, Any], resnet50_gmacs: float) -> List[Dict[str, Any]]:
    """Latency of each network per board: the board's published ResNet-50 time scaled by MACs."""
    rows = []
    for board, cpu, engine, fp32, int8, source in ANCHORS:
        row = {"board": board, "cpu": cpu, "engine": engine, "resnet50_fp32_ms": fp32, "resnet50_int8_ms": int8,
               "source": source}
        for name, c in counts.items():
            scale = c["gmacs"] / resnet50_gmacs
            row[name] = {"fp32_ms": round(fp32 * scale), "int8_ms": round(int8 * scale)}
        rows.append(row)
    return rows


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, nargs=2, default=(640, 640), metavar=("H", "W"))
    parser.add_argument("--model-dir", type=Path, help="count this legacy inference directory instead")
    parser.add_argument("--json", type=Path, help="write the counts here")
    args = parser.parse_args(argv)
    report: Dict[str, Any] = {}
    if args.model_dir:
        report[str(args.model_dir)] = count_program(args.model_dir / "inference.pdmodel")
    else:
        with tempfile.TemporaryDirectory(prefix="flops-") as scratch:
            for name in NETWORKS:
                program = network_program(name, Path(scratch) / name, tuple(args.size))
                report[name] = {"input": list(args.size), **count_program(program / "inference.pdmodel")}
    for name, counts in report.items():
        print(f"{name}: {counts['gflops']:.2f} GFLOPs ({counts['gmacs']:.2f} GMACs) at "
              f"{'x'.join(map(str, counts.get('input', [])))}; by op: "
              + ", ".join(f"{k} {v / 1e9:.2f} G" for k, v in sorted(counts["macs_by_op"].items(), key=lambda kv: -kv[1]))
              + (f"; open shapes in {counts['open_shape_ops']}" if counts["open_shape_ops"] else ""))
    if not args.model_dir:
        with tempfile.TemporaryDirectory(prefix="flops-") as scratch:
            resnet = count_program(resnet50_program(Path(scratch)) / "inference.pdmodel")
        print(f"ResNet-50 (paddle.vision) at 224x224: {resnet['gmacs']:.2f} GMACs (the published boards' yardstick)")
        networks = {k: v for k, v in report.items()}
        report = {"networks": networks, "resnet50_224": resnet,
                  "estimates": estimates(networks, resnet["gmacs"])}
        print("\nexpected latency, ms (FP32 / INT8) = board's published ResNet-50 time x network MACs / ResNet-50 MACs:")
        for row in report["estimates"]:
            print(f"  {row['board']:<40} {row['engine']:<45} "
                  + "  ".join(f"{n} {row[n]['fp32_ms']} / {row[n]['int8_ms']}" for n in networks))
    if args.json:
        args.json.write_text(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
