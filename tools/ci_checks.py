"""The floors the ARM workflow (.github/workflows/arm.yml) holds a run to, against a committed baseline.

    python -m tools.ci_checks eval  --baseline benchmarks/baselines/arm.json --fp32 eval-fp32.json --int8 eval-int8.json
    python -m tools.ci_checks bench --baseline benchmarks/baselines/arm.json bench-*.json

eval:  the FP32 bundle's mask AP (`edge eval --json`) is at least `eval.mask_ap_floor`, and the INT8
       bundle's is at most `eval.max_int8_drop_points` AP points (1 point = 0.01) below it.
bench: runners differ from run to run, so no absolute time is checked. Each `edge bench --compare
       FP32 INT8 --json` report gives the INT8 model's p50 as a ratio to the FP32 model's, measured
       side by side on the same runner; that ratio must stay within `bench.tolerance` of the
       baseline's (slower: a regression, the check fails; faster: a note to tighten the baseline).
       A baseline entry that no report answers fails too: a check that did not run is not a pass.
Exit status 0 when every check holds, 1 when one fails, 2 when an input is unusable.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple


class CheckError(Exception):
    """An input that cannot be checked (missing, not JSON, missing fields)."""


def load_json(path: Path, what: str) -> Dict[str, Any]:
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise CheckError(f"cannot read {what} {path}: {exc.strerror or exc}") from None
    except ValueError as exc:
        raise CheckError(f"{what} {path} is not JSON ({exc})") from None
    if not isinstance(data, dict):
        raise CheckError(f"{what} {path} must be a JSON object")
    return data


def _field(data: Dict[str, Any], path: str, where: str) -> Any:
    value: Any = data
    for key in path.split("."):
        if not isinstance(value, dict) or key not in value:
            raise CheckError(f"{where} has no {path!r}")
        value = value[key]
    return value


def check_eval(baseline: Dict[str, Any], fp32: Dict[str, Any], int8: Dict[str, Any]) -> Tuple[bool, List[str]]:
    """(passed, lines): the FP32 mask AP floor and the INT8 drop in points."""
    floor = float(_field(baseline, "eval.mask_ap_floor", "the baseline"))
    max_drop = float(_field(baseline, "eval.max_int8_drop_points", "the baseline"))
    ap32 = float(_field(fp32, "segm.AP", "the FP32 eval report"))
    ap8 = float(_field(int8, "segm.AP", "the INT8 eval report"))
    drop = (ap32 - ap8) * 100.0
    ok_floor, ok_drop = ap32 >= floor, drop <= max_drop
    return ok_floor and ok_drop, [
        f"{'ok  ' if ok_floor else 'FAIL'} FP32 mask AP {ap32:.4f} (floor {floor:.4f})",
        f"{'ok  ' if ok_drop else 'FAIL'} INT8 mask AP {ap8:.4f}: {drop:+.2f} points below FP32 (at most {max_drop:.2f})",
    ]


def _measured_ratio(reports: Sequence[Dict[str, Any]], label: str, base: str, metric: str) -> Optional[float]:
    for report in reports:
        results = report.get("results") or []
        if results and results[0].get("label") == base and label in (report.get("ratios") or {}):
            value = report["ratios"][label].get(metric)
            if value is None:
                raise CheckError(f"the bench report comparing {label} to {base} has no ratio for {metric!r}")
            return float(value)
    return None


def check_bench(baseline: Dict[str, Any], reports: Sequence[Dict[str, Any]]) -> Tuple[bool, List[str]]:
    """(passed, lines): each baseline ratio against the reports' measured ratio, within the band."""
    tolerance = float(_field(baseline, "bench.tolerance", "the baseline"))
    entries = _field(baseline, "bench.ratios", "the baseline")
    if not isinstance(entries, dict) or not entries:
        raise CheckError("the baseline's bench.ratios must name at least one model")
    passed, lines = True, []
    for label, entry in entries.items():
        base, metric, expected = entry.get("baseline"), entry.get("metric", "inference"), entry.get("ratio")
        if not isinstance(base, str) or not isinstance(expected, (int, float)) or expected <= 0:
            raise CheckError(f"baseline entry {label!r} needs a 'baseline' model label and a positive 'ratio'")
        measured = _measured_ratio(reports, label, base, metric)
        if measured is None:
            passed = False
            lines.append(f"FAIL {label}: no report compares it to {base} (edge bench --model {base} --compare {label})")
            continue
        high, low = expected * (1 + tolerance), expected * (1 - tolerance)
        if measured > high:
            passed = False
            verdict = f"FAIL slower than the baseline allows (at most {high:.3f})"
        elif measured < low:
            verdict = f"ok   faster than the baseline's band (from {low:.3f}): tighten benchmarks/baselines when it holds"
        else:
            verdict = f"ok   within {expected:.3f} ± {tolerance:.0%}"
        lines.append(f"{verdict[:4]} {label} / {base} {metric} p50 ratio {measured:.3f}: {verdict[5:]}")
    return passed, lines


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="check", required=True)
    e = sub.add_parser("eval", help="mask AP floor and INT8 drop")
    e.add_argument("--baseline", type=Path, required=True)
    e.add_argument("--fp32", type=Path, required=True, help="`edge eval --json` of the FP32 bundle")
    e.add_argument("--int8", type=Path, required=True, help="`edge eval --json` of the INT8 bundle")
    b = sub.add_parser("bench", help="INT8 / FP32 latency ratios within the band")
    b.add_argument("--baseline", type=Path, required=True)
    b.add_argument("reports", type=Path, nargs="+", help="`edge bench --compare ... --json` reports")
    args = parser.parse_args(argv)
    try:
        baseline = load_json(args.baseline, "baseline")
        if args.check == "eval":
            passed, lines = check_eval(baseline, load_json(args.fp32, "eval report"), load_json(args.int8, "eval report"))
        else:
            passed, lines = check_bench(baseline, [load_json(p, "bench report") for p in args.reports])
    except CheckError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print("\n".join(lines))
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main())
