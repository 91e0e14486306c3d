"""Graceful shutdown finishes requests in flight; `edge serve` starts, answers and stops on SIGTERM."""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import requests

from edge.serve.runner import wait_until_healthy
from serving_helpers import assert_envelope, b64, closed_port, start_server

INFER = "/instance-segmentation"


def test_shutdown_waits_for_the_request_in_flight(standin_edge, image_host, sample_images):
    base, host = image_host
    host.slow_started.clear()
    host.release.clear()
    live = start_server(standin_edge.inference_dir)
    answers = {}
    client = threading.Thread(target=lambda: answers.setdefault("slow", requests.post(
        live.url + INFER, json={"image": f"{base}/slow/{sample_images[0].name}", "visualize": False}, timeout=60)))
    client.start()
    try:
        assert host.slow_started.wait(10)
        stopper = threading.Thread(target=live.stop)
        stopper.start()  # like SIGTERM: stop accepting, finish what is in flight
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:  # new connections are refused while the old one finishes
            try:
                requests.get(live.url + "/health", timeout=1)
            except requests.ConnectionError:
                break
            time.sleep(0.05)
        else:
            pytest.fail("the server kept accepting connections after shutdown began")
        assert stopper.is_alive()  # still waiting for the request in flight
    finally:
        host.release.set()
    client.join(30)
    stopper.join(30)
    assert answers["slow"].status_code == 200
    body = answers["slow"].json()
    assert_envelope(body, 200)
    assert body["result"]["instances"]


def test_edge_serve_command(standin_edge, sample_images):
    port = closed_port()
    command = [sys.executable, "-m", "edge.cli", "serve", "--model-dir", str(standin_edge.inference_dir),
               "--host", "127.0.0.1", "--port", str(port), "--no-visualize", "--threshold", "0.3"]
    env = {**os.environ, "NO_PROXY": "127.0.0.1", "no_proxy": "127.0.0.1"}
    process = subprocess.Popen(command, cwd=Path(__file__).resolve().parents[3], env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_healthy(url, alive=lambda: process.poll() is None)
        body = requests.post(url + INFER, json={"image": b64(sample_images[0].read_bytes())}, timeout=60).json()
        assert_envelope(body, 200)
        assert "image" not in body["result"]  # --no-visualize
        assert min(i["score"] for i in body["result"]["instances"]) > 0.3  # --threshold is the default
        process.send_signal(signal.SIGTERM)
        # uvicorn shuts down cleanly, then re-raises the signal so supervisors see how it ended
        assert process.wait(30) in (0, -signal.SIGTERM)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    log = process.stdout.read()
    assert "Uvicorn running on http://127.0.0.1" in log
    assert "Application shutdown complete" in log and "Traceback" not in log


def test_edge_serve_refuses_bad_options(standin_edge):
    from edge.cli import main

    with pytest.raises(SystemExit) as exit_:  # argparse
        main(["serve", "--model-dir", str(standin_edge.inference_dir), "--workers", "0"])
    assert exit_.value.code == 2
    assert main(["serve", "--model", "x", "--model-dir", str(standin_edge.inference_dir)]) == 2
    assert main(["serve", "--model-dir", str(standin_edge.inference_dir), "--threshold", "2"]) == 2


BAD_OPTIONS = [
    (["--port", "70000"], "--port"),
    (["--port", "-1"], "--port"),
    (["--port", "abc"], "--port"),
    (["--workers", "0"], "--workers"),
    (["--max-queue", "-1"], "--max-queue"),
    (["--max-body-mb", "nan"], "--max-body-mb"),
    (["--max-body-mb", "0"], "--max-body-mb"),
    (["--url-timeout", "inf"], "--url-timeout"),
    (["--body-timeout", "0"], "--body-timeout"),
    (["--max-pixels", "0"], "--max-pixels"),
    (["--max-decodes", "0"], "--max-decodes"),
    (["--graceful-timeout", "-5"], "--graceful-timeout"),
    (["--threads", "0"], "--threads"),
    (["--threshold", "nan"], "threshold"),
    (["--host", "no-such-host.invalid"], "--host"),
]


@pytest.mark.parametrize("options,named", BAD_OPTIONS, ids=[" ".join(o) for o, _ in BAD_OPTIONS])
def test_edge_serve_bad_option_exits_2_with_one_line(standin_edge, options, named):
    command = [sys.executable, "-m", "edge.cli", "serve", "--model-dir", str(standin_edge.inference_dir),
               "--host", "127.0.0.1", *options]
    done = subprocess.run(command, cwd=Path(__file__).resolve().parents[3], capture_output=True, text=True, timeout=120)
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and named in lines[0] and "Traceback" not in done.stderr, done.stderr


def test_edge_serve_on_a_port_in_use_exits_2_before_loading_the_model(tmp_path):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        command = [sys.executable, "-m", "edge.cli", "serve", "--model-dir", str(tmp_path / "not-loaded"),
                   "--host", "127.0.0.1", "--port", str(busy.getsockname()[1])]
        done = subprocess.run(command, cwd=Path(__file__).resolve().parents[3], capture_output=True, text=True,
                              timeout=120)
    assert done.returncode == 2, done.stderr
    assert done.stderr.strip().splitlines() == [done.stderr.strip()] and "cannot listen on 127.0.0.1:" in done.stderr
