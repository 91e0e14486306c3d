"""`edge bench` on the stand-in (x86 Paddle Lite bundle and Paddle Inference directory): its figures
agree with each other, `--compare` ratios are ratios of the medians, bad inputs are one-line errors.
No wall-clock assertion: only the report's internal consistency is checked."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from edge.bench import STAGES, Candidate, load_inputs, parse_candidates, run_bench
from edge.cli import main
from edge.errors import ConfigError, InputError


@pytest.fixture(scope="module")
def one_photo(tmp_path_factory) -> Path:
    """One image: with a single image each stage's samples are one distribution, not a mixture of sizes."""
    folder = tmp_path_factory.mktemp("bench_input")
    source = Path(__file__).resolve().parents[2] / "samples" / "coco" / "000000087038.jpg"  # 640x480
    shutil.copy(source, folder / source.name)
    return folder


def test_stages_sum_to_the_total(standin_edge, one_photo):
    report = run_bench([Candidate(str(standin_edge.bundle_dir))], load_inputs(one_photo), warmup=2, repeat=25)
    (result,) = report["results"]
    means = {stage: float(np.mean(result["samples_ms"][stage])) for stage in (*STAGES, "total")}
    stage_sum = sum(means[stage] for stage in STAGES)
    assert stage_sum == pytest.approx(means["total"], rel=0.05), means  # the total is timed on its own
    assert stage_sum < means["total"]  # ... and holds the predictor's own overhead besides the stages
    assert result["stage_sum_ratio"] == pytest.approx(stage_sum / means["total"], rel=1e-3)
    medians = {stage: float(np.median(result["samples_ms"][stage])) for stage in (*STAGES, "total")}
    for stage in STAGES:  # the percentiles are of the samples, in order
        values = result["stages"][stage]
        assert 0 < values["p50"] <= values["p90"] <= values["p99"]
        assert values["p50"] == pytest.approx(medians[stage], rel=1e-3, abs=1e-3)
    assert len(result["samples_ms"]["total"]) == 25
    assert result["fps"] == pytest.approx(1000.0 / np.mean(result["samples_ms"]["total"]), rel=1e-3)
    assert result["model_size_bytes"] == (standin_edge.bundle_dir / "model.nb").stat().st_size
    assert result["engine"] == "lite" and result["precision"] == "fp32"
    assert result["instances"]["per_image_mean"] >= 0 and result["peak_rss_bytes"] > 0
    assert report["machine"]["cores"] >= 1 and report["machine"]["paddlelite"] and report["machine"]["cpu_model"]
    assert report["ratios"] == {}


def test_compare_ratios_are_ratios_of_medians(standin_edge, one_photo, tmp_path, capsys):
    out = tmp_path / "bench.json"
    code = main(["bench", "--model", str(standin_edge.bundle_dir), "--compare", str(standin_edge.inference_dir),
                 "--input", str(one_photo), "--warmup", "1", "--repeat", "8", "--json", str(out)])
    assert code == 0
    printed = capsys.readouterr().out
    report = json.loads(out.read_text())
    lite, paddle = report["results"]
    assert (lite["engine"], paddle["engine"]) == ("lite", "paddle")
    ratios = report["ratios"][paddle["label"]]
    for stage in (*STAGES, "total"):
        expected = np.median(paddle["samples_ms"][stage]) / np.median(lite["samples_ms"][stage])
        assert ratios[stage] == pytest.approx(expected, rel=2e-3), stage
    assert ratios["model_size"] == pytest.approx(paddle["model_size_bytes"] / lite["model_size_bytes"])
    assert f"ratio of p50 to {lite['label']}" in printed and f"{ratios['inference']:.3f}x" in printed
    for stage in (*STAGES, "total"):
        assert f"  {stage:<12}" in printed


def test_engine_suffix_and_labels(standin_edge):
    (candidate,) = parse_candidates(f"{standin_edge.inference_dir}@paddle", None)
    assert candidate.model == str(standin_edge.inference_dir) and candidate.backend == "paddle"
    twice = parse_candidates(str(standin_edge.bundle_dir), [str(standin_edge.bundle_dir)])
    assert len({c.label for c in twice}) == 2  # the labels key the JSON


def test_bad_inputs_are_clear_errors(standin_edge, one_photo, tmp_path, capsys):
    model = ["--model", str(standin_edge.bundle_dir)]
    assert main(["bench", *model, "--input", str(tmp_path / "missing.jpg")]) == 2
    assert "missing.jpg" in capsys.readouterr().err

    (tmp_path / "empty").mkdir()
    assert main(["bench", *model, "--input", str(tmp_path / "empty")]) == 2
    assert "has no images" in capsys.readouterr().err

    fake = tmp_path / "fake" / "notes.jpg"
    fake.parent.mkdir()
    fake.write_text("not a picture")
    assert main(["bench", *model, "--input", str(fake.parent)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: cannot read input") and "notes.jpg" in err and "Traceback" not in err

    assert main(["bench", "--compare", str(standin_edge.bundle_dir), "--input", str(one_photo)]) == 2
    assert "two or more models" in capsys.readouterr().err

    assert main(["bench", "--input", str(one_photo)]) == 2
    assert "pass --model" in capsys.readouterr().err

    assert main(["bench", "--model", str(tmp_path / "nothing"), "--input", str(one_photo)]) == 2
    assert "nothing" in capsys.readouterr().err

    assert main(["bench", *model, "--input", str(one_photo), "--json", str(tmp_path / "no" / "dir" / "b.json")]) == 2
    assert "does not exist" in capsys.readouterr().err

    assert main(["bench", *model, "--input", str(one_photo), "--threshold", "2"]) == 2
    assert "threshold" in capsys.readouterr().err

    for bad in (["--repeat", "0"], ["--warmup", "-1"], ["--power-mode", "TURBO"]):
        with pytest.raises(SystemExit) as exit_info:
            main(["bench", *model, "--input", str(one_photo), *bad])
        assert exit_info.value.code == 2
        assert bad[0] in capsys.readouterr().err

    with pytest.raises(InputError):
        load_inputs(tmp_path / "empty")
    with pytest.raises(ConfigError):
        run_bench([Candidate(str(standin_edge.bundle_dir))], load_inputs(one_photo), repeat=0)
