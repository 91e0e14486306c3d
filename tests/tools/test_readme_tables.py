"""tools/readme_tables.py: the README's measured tables come from the benchmark JSON, block by block."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from tools.readme_tables import RESULTS, ROOT, TablesError, main, render

PREPOST = {"name": "test_prepost_over_model_time_ratio[standin-64]", "param": "standin-64",
           "extra_info": {"pre_ms": 0.25, "post_ms": 6.43, "model_ms": 0.041, "prepost_over_model": 162.9}}
LOAD = [{"name": f"test_serve_under_load[{n}-worker]", "param": f"{n}-worker", "extra_info": {
    "workers": n, "cores": 2, "single_stream_rps": 10.0, "throughput_rps": 9.1 * n, "efficiency": 0.91, "clients": 8,
    "duration_s": 60.0, "p50_ms": 650.2, "p99_ms": 951.0, "rss_peak_mb": 480.4, "unexpected_errors": 0}} for n in (1, 2)]


def test_blocks_are_written_from_the_json_and_the_rest_kept():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    after, written, kept = render(readme, {"benchmarks": [PREPOST, *LOAD]}, {})
    assert written == ["prepost", "serve-load"] and "edge-bench" in kept and "network-memory" in kept
    assert "| stand-in 64×64 | 0.25 ms | 6.4 ms | 0.04 ms | 163 |" in after
    assert "| 2 | 2 | 10.0 req/s | 18.2 req/s | 0.91 | 650 ms | 951 ms | 480 MB | 0 |" in after
    assert "stand-in 640×640" not in after.split("<!-- bench:prepost -->")[1].split("<!-- /bench:prepost -->")[0]
    start = readme.index("<!-- bench:network-memory -->")  # a block without figures: untouched
    assert after[after.index("<!-- bench:network-memory -->"):][:300] == readme[start:][:300]
    assert render(after, {"benchmarks": [PREPOST, *LOAD]}, {})[0] == after  # idempotent


def test_edge_bench_table(tmp_path):
    report = {"machine": {"cpu_model": "AMD EPYC", "arch": "x86_64", "cores": 2, "paddlelite": "2.13rc0",
                          "paddlepaddle": "3.0.0"},
              "settings": {"images": ["a.jpg"], "repeat": 30},
              "results": [{"label": name, "engine": engine, "precision": "fp32",
                           "stages": {s: {"p50": 1.0 + i} for i, s in enumerate(
                               ("decode", "preprocess", "inference", "postprocess", "visualise"))},
                           "total": {"p50": 16.0, "p99": 30.0}, "fps": 60.0, "model_size_bytes": 9 * 2**20,
                           "peak_rss_bytes": 300 * 2**20} for name, engine in (("a", "lite"), ("b", "paddle"))],
              "ratios": {"b": {"total": 1.25}}}
    after, written, _ = render((ROOT / "README.md").read_text(encoding="utf-8"), {}, report)
    assert written == ["edge-bench"]
    assert "| b | paddle fp32 | 1.0 ms | 2.0 ms | 3.0 ms | 4.0 ms | 5.0 ms | 16.0 ms | 30.0 ms | 60.0 | 9.0 MB | 300 MB | 1.25× |" in after


def test_check_and_write(tmp_path, capsys):
    readme = tmp_path / "README.md"
    shutil.copy(ROOT / "README.md", readme)
    results = tmp_path / "pytest.json"
    results.write_text(json.dumps({"benchmarks": [PREPOST]}))
    args = ["--readme", str(readme), "--pytest", str(results), "--edge-bench", str(tmp_path / "none.json")]
    if "| 0.25 ms |" not in readme.read_text():
        assert main([*args, "--check"]) == 1
    assert main(args) == 0 and "wrote prepost" in capsys.readouterr().out
    assert main([*args, "--check"]) == 0

    readme.write_text("no markers here\n")
    assert main(args) == 2 and "bench:" in capsys.readouterr().err
    with pytest.raises(TablesError):
        render("nothing", {}, {})


@pytest.mark.skipif(not any((RESULTS / n).is_file() for n in ("pytest.json", "edge_bench.json")),
                    reason="no committed benchmark results (make bench writes them)")
def test_committed_readme_matches_the_committed_results():
    assert main(["--check"]) == 0, "README tables were edited by hand or the results changed: run `python -m tools.readme_tables`"
