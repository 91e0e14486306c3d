"""The `edge` command line, run in-process and as the installed console script."""
import json
import subprocess
import sys
from pathlib import Path

import yaml

from edge.cli import main


def test_predict_prints_and_saves(standin_edge, sample_images, tmp_path, capsys):
    code = main(["predict", "--model", str(standin_edge.bundle_dir), "--input", str(sample_images[0]),
                 "--threshold", "0.5", "--save_path", str(tmp_path), "--device", "cpu"])
    assert code == 0
    assert '"res"' in capsys.readouterr().out
    stem = sample_images[0].stem
    assert (tmp_path / f"{stem}_res.jpg").exists()
    assert json.loads((tmp_path / f"{stem}_res.json").read_text())["input_path"] == str(sample_images[0])


def test_errors_are_one_line_and_exit_2(tmp_path, capsys):
    assert main(["predict", "--model", "No-Such-Model", "--input", "x.jpg"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: unknown model 'No-Such-Model'") and "Traceback" not in err
    assert main(["predict", "--model", str(tmp_path), "--input", "x.jpg", "--threshold", "3"]) == 2


def test_get_pipeline_config(tmp_path, capsys):
    assert main(["--get_pipeline_config", "instance_segmentation", "--save_path", str(tmp_path)]) == 0
    config = yaml.safe_load((tmp_path / "instance_segmentation.yaml").read_text())
    module = config["SubModules"]["InstanceSegmentation"]
    assert config["pipeline_name"] == "instance_segmentation"
    assert {"module_name", "model_name", "model_dir", "batch_size", "threshold"} <= set(module)
    assert main(["--get_pipeline_config", "ocr", "--save_path", str(tmp_path)]) == 2


def test_models_lists_fifteen(capsys):
    assert main(["models"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()[1:]
    assert len(lines) == 15
    assert sum("edge export" in line for line in lines) == 2


def test_console_script_is_installed():
    edge = Path(sys.executable).parent / "edge"
    out = subprocess.run([str(edge), "models"], capture_output=True, text=True, check=True).stdout
    assert "PP-YOLOE_seg-S" in out


def test_eval_reports_ap_and_stage_latency(tmp_path, capsys):
    from standin import export_standin

    samples = Path(__file__).resolve().parents[2] / "samples" / "synthetic"
    labels = ["circle", "rectangle", "triangle", "star", "ring"]
    model = export_standin(tmp_path / "m", num_classes=5, labels=labels)
    report = tmp_path / "report.json"
    assert main(["eval", "--model", str(model), "--data", str(samples / "annotations.json"), "--images", str(samples),
                 "--json", str(report)]) == 0
    out = capsys.readouterr().out
    assert "mask AP" in out and "latency (median ms): total" in out and "preprocess" in out
    data = json.loads(report.read_text())
    assert data["num_images"] == 6 and 0.0 <= data["segm"]["AP"] <= 1.0
    assert set(data["segm"]["per_class"]) == set(labels)


def test_predict_server_only_model_goes_to_the_server_url(sample_images, capsys):
    code = main(["predict", "--model", "Mask-RT-DETR-L", "--input", str(sample_images[0]),
                 "--server-url", "http://127.0.0.1:9"])
    assert code == 2
    assert "http://127.0.0.1:9" in capsys.readouterr().err
