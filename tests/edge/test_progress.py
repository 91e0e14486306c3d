"""Progress bars: drawn by tqdm on a terminal when a command shows them; never when stderr is not a
terminal, with `--quiet`, or for library callers. The terminal is a stream whose isatty() is True
(tqdm writes to it exactly as to a real one) and the real commands run in-process."""
from __future__ import annotations

import io
import sys
from pathlib import Path

import pytest

from edge import progress
from edge.cli import main

SAMPLES = Path(__file__).resolve().parents[2] / "samples" / "synthetic"


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_bar_only_when_shown_and_on_a_terminal():
    items = [1, 2, 3]
    assert progress.bar(items, stream=Terminal()) is items  # library callers: no bar
    with progress.shown():
        assert progress.bar(items, stream=io.StringIO()) is items  # not a terminal
        terminal = Terminal()
        assert list(progress.bar(items, desc="work", stream=terminal)) == items
        assert "work" in terminal.getvalue() and "/3 " in terminal.getvalue()
    with progress.shown(False):  # --quiet
        assert progress.bar(items, stream=Terminal()) is items
    silent = progress.bar(total=3, stream=io.StringIO())
    silent.update(1)
    silent.close()


@pytest.fixture()
def terminal_stderr(monkeypatch, capsys):
    """Call it in the test body: pytest puts its own sys.stderr back between set-up and the call."""
    def patch() -> Terminal:
        terminal = Terminal()
        monkeypatch.setattr(sys, "stderr", terminal)
        return terminal
    return patch


def test_predict_on_a_directory_shows_a_bar(standin_edge, terminal_stderr):
    terminal_stderr = terminal_stderr()
    assert main(["predict", "--model", str(standin_edge.bundle_dir), "--input", str(SAMPLES)]) == 0
    assert "predict" in terminal_stderr.getvalue() and "/6 " in terminal_stderr.getvalue()


def test_predict_quiet_or_single_image_no_bar(standin_edge, terminal_stderr):
    terminal_stderr = terminal_stderr()
    assert main(["predict", "--model", str(standin_edge.bundle_dir), "--input", str(SAMPLES), "--quiet"]) == 0
    assert main(["predict", "--model", str(standin_edge.bundle_dir), "--input", str(SAMPLES / "000001.jpg")]) == 0
    assert "predict" not in terminal_stderr.getvalue() and "%|" not in terminal_stderr.getvalue()


def test_predict_piped_no_bar(standin_edge, capsys):
    assert main(["predict", "--model", str(standin_edge.bundle_dir), "--input", str(SAMPLES)]) == 0
    assert "%|" not in capsys.readouterr().err


def test_eval_shows_a_bar_and_quiet_hides_it(tmp_path, terminal_stderr):
    terminal_stderr = terminal_stderr()
    from standin import export_standin

    labels = ["circle", "rectangle", "triangle", "star", "ring"]
    model = export_standin(tmp_path / "m", num_classes=5, labels=labels)
    args = ["eval", "--model", str(model), "--data", str(SAMPLES / "annotations.json"), "--images", str(SAMPLES)]
    assert main([*args, "--quiet"]) == 0
    assert "eval" not in terminal_stderr.getvalue()
    assert main(args) == 0
    assert "eval (paddle)" in terminal_stderr.getvalue() and "/6 " in terminal_stderr.getvalue()


def test_export_calibration_and_verification_loops_show_bars(standin_edge):
    """The loops `edge export` spends its minutes in: calibration feeds and the verification runs."""
    from edge.models import open_model_dir
    from edge.predictor import LocalPredictor
    from edge.preprocess import Preprocessor
    from export.quantize import _CalibrationFeeds
    from export.verify import run_predictor

    images = sorted(SAMPLES.glob("*.jpg"))[:3]
    feeds = _CalibrationFeeds(images, Preprocessor(standin_edge.spec), ["im_shape", "image", "scale_factor"])
    predictor = LocalPredictor(open_model_dir(standin_edge.bundle_dir), "lite")
    terminal = Terminal()
    with progress.shown():
        sys_stderr, sys.stderr = sys.stderr, terminal
        try:
            assert len(list(feeds())) == 3
            assert len(run_predictor(predictor, images, 0.5)) == 3
        finally:
            sys.stderr = sys_stderr
    assert "calibration" in terminal.getvalue() and "verify (lite)" in terminal.getvalue()
    quiet = Terminal()
    sys_stderr, sys.stderr = sys.stderr, quiet
    try:
        list(feeds())
    finally:
        sys.stderr = sys_stderr
    assert quiet.getvalue() == ""


def test_export_and_eval_accept_quiet():
    from edge.cli import build_parser

    parser = build_parser()
    for argv in (["export", "--quiet"], ["demo", "--quiet"], ["eval", "--data", "x.json", "--quiet"],
                 ["predict", "--input", "x", "--quiet"], ["bench", "--input", "x", "--model", "m", "--quiet"]):
        assert parser.parse_args(argv).quiet is True


def test_predict_on_a_video_counts_its_frames(standin_edge, tmp_path, terminal_stderr):
    import cv2
    import numpy as np

    video = tmp_path / "clip.avi"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"MJPG"), 5, (64, 48))
    for i in range(4):
        writer.write(np.full((48, 64, 3), 40 * i, np.uint8))
    writer.release()
    terminal = terminal_stderr()
    assert main(["predict", "--model", str(standin_edge.bundle_dir), "--input", str(video)]) == 0
    assert "predict" in terminal.getvalue() and "/4 " in terminal.getvalue()
