"""Graceful shutdown finishes requests in flight; `edge serve` starts, answers and stops on SIGTERM."""
from __future__ import annotations

import os
import signal
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

    assert main(["serve", "--model-dir", str(standin_edge.inference_dir), "--workers", "0"]) == 2
    assert main(["serve", "--model", "x", "--model-dir", str(standin_edge.inference_dir)]) == 2
    assert main(["serve", "--model-dir", str(standin_edge.inference_dir), "--threshold", "2"]) == 2
