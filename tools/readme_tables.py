"""Write the README's measured tables from the benchmark JSON (the last step of `make bench`).

    python -m tools.readme_tables            # rewrite README.md's blocks from benchmarks/results/
    python -m tools.readme_tables --check    # exit 1 if README.md is not what the JSON gives

Inputs: `benchmarks/results/pytest.json` (pytest-benchmark's --benchmark-json: each benchmark's
extra_info holds its figures) and `benchmarks/results/edge_bench.json` (`edge bench --json`).
Each table lives in README.md between `<!-- bench:NAME -->` and `<!-- /bench:NAME -->`; a block
whose benchmark is not in the JSON (skipped, or not run) is left as it is, and said so.
"""
from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
STAGES = ("decode", "preprocess", "inference", "postprocess", "visualise")


class TablesError(Exception):
    pass


# ------------------------------------------------------------------------------------ numbers
def ms(value: float) -> str:
    """Milliseconds with about two significant figures (0.24, 6.4, 832)."""
    if value < 1:
        return f"{value:.2f} ms"
    if value < 100:
        return f"{value:.1f} ms"
    return f"{value:.0f} ms"


def gb(mb: float) -> str:
    return f"{mb / 1024:.2f} GB" if mb < 1024 else f"{mb / 1024:.1f} GB"


def sig(value: float) -> str:
    return f"{value:.3g}" if value >= 0.01 else f"{value:.2g}"


def seconds(value: float) -> str:
    return f"{value:.2g} s" if value < 10 else f"{value:.0f} s"


# ------------------------------------------------------------------------------------ benchmarks
def by_test(pytest_json: Optional[Dict[str, Any]], test: str) -> List[Dict[str, Any]]:
    """The runs of one benchmark function (every parameter), in file order."""
    if not pytest_json:
        return []
    return [b for b in pytest_json.get("benchmarks", []) if b["name"].split("[")[0] == test and b.get("extra_info")]


def prepost_table(pytest_json: Dict[str, Any]) -> Optional[str]:
    names = {"standin-64": "stand-in 64×64", "standin-640": "stand-in 640×640",
             "PP-YOLOE_seg-S-640": "PP-YOLOE_seg-S 640×640 (edge graph)"}
    runs = by_test(pytest_json, "test_prepost_over_model_time_ratio")
    if not runs:
        return None
    rows = ["| model | pre | post | model | (pre+post) / model |", "|---|---|---|---|---|"]
    for run in runs:
        x = run["extra_info"]
        rows.append(f"| {names.get(run['param'], run['param'])} | {ms(x['pre_ms'])} | {ms(x['post_ms'])} | "
                    f"{ms(x['model_ms'])} | {sig(x['prepost_over_model'])} |")
    return "\n".join(rows)


def network_memory_table(pytest_json: Dict[str, Any]) -> Optional[str]:
    runs = by_test(pytest_json, "test_peak_memory_reference_vs_edge")
    if not runs:
        return None
    rows = ["| network | reference graph (full-size masks) | edge graph (low-res masks) | ratio |", "|---|---|---|---|"]
    for run in runs:
        x = run["extra_info"]
        cells = [f"{gb(x[g]['predict_peak_mb'])}, {x[g]['seconds']:.1f} s" for g in ("reference", "edge")]
        rows.append(f"| {run['param']} | {cells[0]} | {cells[1]} | {x['reference_over_edge_peak']:.1f}× |")
    return "\n".join(rows)


def export_steps_text(pytest_json: Dict[str, Any]) -> Optional[str]:
    runs = by_test(pytest_json, "test_int8_export_steps_ppyoloe_seg")
    if not runs:
        return None
    x = runs[0]["extra_info"]
    steps = ", ".join(f"{name} {seconds(value)}" for name, value in x["step_seconds"].items())
    return (f"`edge export --int8` of PP-YOLOE_seg-S (640×640, 80 classes) with 32 calibration images\n"
            f"(`benchmarks/test_export_steps.py`): {steps} — {x['total_seconds']:.0f} s in all (target ≤ 10 min).")


def serve_load_table(pytest_json: Dict[str, Any]) -> Optional[str]:
    runs = by_test(pytest_json, "test_serve_under_load")
    if not runs:
        return None
    x0 = runs[0]["extra_info"]
    rows = [f"Serving (`benchmarks/test_serve_load.py`, stand-in model, one inference thread per worker, "
            f"{x0['clients']} clients for {x0['duration_s']:g} s on loopback, visualisation on; efficiency = "
            f"throughput / (workers × the single-stream rate measured on the same server just before; goal ≥ 0.9):",
            "",
            "| workers | cores | single stream | throughput | efficiency | p50 | p99 | peak RSS | unexpected errors |",
            "|---|---|---|---|---|---|---|---|---|"]
    for run in runs:
        x = run["extra_info"]
        rows.append(f"| {x['workers']} | {x['cores']} | {x['single_stream_rps']:.1f} req/s | {x['throughput_rps']:.1f} req/s | "
                    f"{x['efficiency']:.2f} | {ms(x['p50_ms'])} | {ms(x['p99_ms'])} | {x['rss_peak_mb']:.0f} MB | "
                    f"{x['unexpected_errors']} |")
    return "\n".join(rows)


def serve_memory_text(pytest_json: Dict[str, Any]) -> Optional[str]:
    runs = {run["param"]: run["extra_info"] for run in by_test(pytest_json, "test_serve_peak_memory_under_a_burst_of_large_images")}
    if not runs:
        return None
    parts = []
    if "defaults" in runs:
        parts.append(f"{gb(runs['defaults']['peak_rss_mb'])} with the default limits")
    if "max-decodes-1" in runs:
        parts.append(f"{gb(runs['max-decodes-1']['peak_rss_mb'])} with `--max-decodes 1`")
    idle = next(iter(runs.values()))["idle_rss_mb"]
    return ("Peak memory of `edge serve` under 17 concurrent 6000×6000 PNGs (`benchmarks/test_serve_memory.py`, stand-in\n"
            f"model): {', '.join(parts)} ({gb(idle)} idle).")


def edge_bench_table(report: Dict[str, Any]) -> Optional[str]:
    if not report:
        return None
    m, s = report["machine"], report["settings"]
    rows = [f"`edge bench` ({m['cpu_model']}, {m['arch']}, {m['cores']} cores; paddlelite {m['paddlelite']}, "
            f"paddlepaddle {m['paddlepaddle']}; {len(s['images'])} images, {s['repeat']} measured predictions "
            f"per model, side by side), median per stage:", "",
            "| model | engine | " + " | ".join(STAGES) + " | total p50 | total p99 | FPS | model size | peak RSS | total vs first |",
            "|---|---|" + "---|" * (len(STAGES) + 6)]
    ratios = report.get("ratios", {})
    for r in report["results"]:
        ratio = ratios.get(r["label"], {}).get("total")
        rows.append(f"| {r['label']} | {r['engine']} {r['precision']} | "
                    + " | ".join(ms(r["stages"][stage]["p50"]) for stage in STAGES)
                    + f" | {ms(r['total']['p50'])} | {ms(r['total']['p99'])} | {r['fps']:.1f} | "
                      f"{r['model_size_bytes'] / 2**20:.1f} MB | {r['peak_rss_bytes'] / 2**20:.0f} MB | "
                      f"{'1' if ratio is None else f'{ratio:.2f}'}× |")
    return "\n".join(rows)


BLOCKS: Dict[str, Callable[[Dict[str, Any], Dict[str, Any]], Optional[str]]] = {
    "edge-bench": lambda p, e: edge_bench_table(e),
    "prepost": lambda p, e: prepost_table(p),
    "network-memory": lambda p, e: network_memory_table(p),
    "export-steps": lambda p, e: export_steps_text(p),
    "serve-load": lambda p, e: serve_load_table(p),
    "serve-memory": lambda p, e: serve_memory_text(p),
}


def _block_re(name: str) -> "re.Pattern[str]":
    return re.compile(rf"(<!-- bench:{re.escape(name)} -->\n)(.*?)(\n<!-- /bench:{re.escape(name)} -->)", re.S)


def render(readme: str, pytest_json: Dict[str, Any], edge_bench: Dict[str, Any]) -> tuple:
    """(new README text, names of the blocks written, names left as they were)."""
    written, kept = [], []
    for name, make in BLOCKS.items():
        pattern = _block_re(name)
        if not pattern.search(readme):
            raise TablesError(f"README has no block <!-- bench:{name} --> ... <!-- /bench:{name} -->")
        body = make(pytest_json, edge_bench)
        if body is None:
            kept.append(name)
            continue
        readme = pattern.sub(lambda match: match.group(1) + body + match.group(3), readme)
        written.append(name)
    return readme, written, kept


def _load(path: Path) -> Dict[str, Any]:
    if not path.is_file():
        return {}
    try:
        return json.loads(path.read_text())
    except ValueError as exc:
        raise TablesError(f"{path} is not JSON ({exc})") from None


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pytest", type=Path, default=RESULTS / "pytest.json", help="pytest-benchmark JSON")
    parser.add_argument("--edge-bench", type=Path, default=RESULTS / "edge_bench.json", help="`edge bench --json` output")
    parser.add_argument("--readme", type=Path, default=ROOT / "README.md")
    parser.add_argument("--check", action="store_true", help="do not write; exit 1 if the README differs")
    args = parser.parse_args(argv)
    try:
        before = args.readme.read_text(encoding="utf-8")
        after, written, kept = render(before, _load(args.pytest), _load(args.edge_bench))
    except TablesError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.check:
        if after != before:
            print(f"{args.readme} differs from the benchmark JSON; run `python -m tools.readme_tables`", file=sys.stderr)
            return 1
        print(f"{args.readme}: tables match the benchmark JSON")
        return 0
    args.readme.write_text(after, encoding="utf-8")
    print(f"{args.readme}: wrote {', '.join(written) or 'nothing'}"
          + (f"; left as they were (no figures in the JSON): {', '.join(kept)}" if kept else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
