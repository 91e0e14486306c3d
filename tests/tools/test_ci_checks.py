"""tools/ci_checks.py, the ARM workflow's floors: the mask AP floor and INT8 drop, and the INT8 / FP32
latency band against a baseline, read from real `edge bench` / `edge eval` report formats."""
from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

from tools.ci_checks import CheckError, check_bench, check_eval, main

REPO = Path(__file__).resolve().parents[2]
BASELINE = {"eval": {"mask_ap_floor": 0.58, "max_int8_drop_points": 1.0},
            "bench": {"tolerance": 0.15, "ratios": {"int8": {"baseline": "fp32", "metric": "inference", "ratio": 0.6}}}}


def bench_report(ratio: float, labels=("fp32", "int8")) -> dict:
    return {"results": [{"label": labels[0]}, {"label": labels[1]}],
            "ratios": {labels[1]: {"inference": ratio, "total": ratio}}}


def test_eval_floor_and_drop():
    ok, lines = check_eval(BASELINE, {"segm": {"AP": 0.62}}, {"segm": {"AP": 0.615}})
    assert ok and "-0.50" not in lines[1] and "+0.50 points" in lines[1]
    ok, lines = check_eval(BASELINE, {"segm": {"AP": 0.57}}, {"segm": {"AP": 0.57}})
    assert not ok and lines[0].startswith("FAIL")
    ok, lines = check_eval(BASELINE, {"segm": {"AP": 0.62}}, {"segm": {"AP": 0.6099}})  # 1.01 points
    assert not ok and lines[1].startswith("FAIL")
    with pytest.raises(CheckError, match="segm.AP"):
        check_eval(BASELINE, {"bbox": {}}, {"segm": {"AP": 0.6}})


def test_bench_band():
    assert check_bench(BASELINE, [bench_report(0.65)])[0]  # within 0.6 ± 15 %
    ok, lines = check_bench(BASELINE, [bench_report(0.70)])  # slower than 0.69
    assert not ok and lines[0].startswith("FAIL") and "0.700" in lines[0]
    ok, lines = check_bench(BASELINE, [bench_report(0.40)])  # faster: passes, says so
    assert ok and "tighten" in lines[0]
    ok, lines = check_bench(BASELINE, [bench_report(0.6, ("other", "int8"))])  # compared to another model
    assert not ok and "no report compares it to fp32" in lines[0]
    bad = copy.deepcopy(BASELINE)
    bad["bench"]["ratios"]["int8"]["ratio"] = 0
    with pytest.raises(CheckError):
        check_bench(bad, [bench_report(0.6)])


def test_reads_a_real_edge_bench_report(tmp_path):
    """The format check_bench reads is the one `edge bench --compare --json` writes."""
    from edge.bench import Candidate, load_inputs, run_bench
    from standin import standin_bundle

    inference_dir, bundle = standin_bundle(tmp_path, "edge", (64, 64), target="x86")
    report = run_bench([Candidate(str(bundle)), Candidate(str(inference_dir))],
                       load_inputs(REPO / "samples" / "synthetic" / "000001.jpg"), warmup=1, repeat=3)
    fp32, other = (r["label"] for r in report["results"])
    measured = report["ratios"][other]["inference"]
    baseline = {"bench": {"tolerance": 0.1, "ratios": {other: {"baseline": fp32, "ratio": measured}}}}
    assert check_bench(baseline, [report]) == (True, [check_bench(baseline, [report])[1][0]])
    baseline["bench"]["ratios"][other]["ratio"] = measured / 2  # the measured one is now twice too slow
    assert not check_bench(baseline, [report])[0]


def test_command_line(tmp_path, capsys):
    base, fp32, int8, rep = (tmp_path / n for n in ("base.json", "fp32.json", "int8.json", "bench.json"))
    base.write_text(json.dumps(BASELINE))
    fp32.write_text(json.dumps({"segm": {"AP": 0.63}}))
    int8.write_text(json.dumps({"segm": {"AP": 0.625}}))
    rep.write_text(json.dumps(bench_report(0.62)))
    assert main(["eval", "--baseline", str(base), "--fp32", str(fp32), "--int8", str(int8)]) == 0
    assert main(["bench", "--baseline", str(base), str(rep)]) == 0
    rep.write_text(json.dumps(bench_report(0.9)))
    assert main(["bench", "--baseline", str(base), str(rep)]) == 1
    assert main(["bench", "--baseline", str(base), str(tmp_path / "missing.json")]) == 2
    assert "cannot read bench report" in capsys.readouterr().err
    rep.write_text("{not json")
    assert main(["bench", "--baseline", str(base), str(rep)]) == 2
    assert "is not JSON" in capsys.readouterr().err


def test_committed_baseline_is_usable():
    baseline = json.loads((REPO / "benchmarks" / "baselines" / "arm.json").read_text())
    for label, entry in baseline["bench"]["ratios"].items():
        report = bench_report(entry["ratio"], (entry["baseline"], label))
        assert check_bench({"bench": {**baseline["bench"], "ratios": {label: entry}}}, [report])[0]
    assert 0 < baseline["eval"]["mask_ap_floor"] < 1 and baseline["eval"]["max_int8_drop_points"] == 1.0
