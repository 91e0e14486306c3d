"""Peak memory of `edge serve` under a burst of large images (stand-in model, loopback).

17 clients (the default `--workers 1` + `--max-queue 16`) each send a 6000x6000 PNG at once
(36 M pixels, under the default `--max-pixels` of 40 M; a few MB of flat shapes, so the body
is well under `--max-body-mb`). The server runs as its own process; its peak resident memory is
the kernel's high-water mark (VmHWM). Runs with `make bench` (minutes), skipped by `make test`.
Reports the peak for the default limits and for `--max-decodes 1` (the flag for small boards).
"""
from __future__ import annotations

import base64
import os
import signal
import socket
import subprocess
import sys
import threading
from pathlib import Path

import cv2
import numpy as np
import pytest
import requests

from edge.serve.runner import wait_until_healthy

ROOT = Path(__file__).resolve().parents[1]
CLIENTS = 17
SIDE = 6000


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def status_kb(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"no {field}")


def big_png() -> bytes:
    """6000x6000 of flat shapes: large when decoded (108 MB), small as a file."""
    rng = np.random.default_rng(0)
    image = np.full((SIDE, SIDE, 3), 90, np.uint8)
    for _ in range(40):
        x, y = (int(v) for v in rng.integers(0, SIDE, 2))
        color = tuple(int(v) for v in rng.integers(0, 255, 3))
        cv2.circle(image, (x, y), int(rng.integers(150, 900)), color, -1)
    return cv2.imencode(".png", image, [cv2.IMWRITE_PNG_COMPRESSION, 9])[1].tobytes()


@pytest.fixture(scope="module")
def standin_dir(long_benchmark, tmp_path_factory) -> Path:
    import export  # noqa: F401  (legacy programs before paddle is imported)
    from standin import export_standin

    return export_standin(tmp_path_factory.mktemp("memory") / "standin", graph="edge")


def burst(model_dir: Path, options: list, payload: dict) -> dict:
    port = free_port()
    env = {**os.environ, "NO_PROXY": "127.0.0.1", "no_proxy": "127.0.0.1"}
    process = subprocess.Popen([sys.executable, "-m", "edge.cli", "serve", "--model-dir", str(model_dir), "--host",
                                "127.0.0.1", "--port", str(port), *options],
                               cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_healthy(url, alive=lambda: process.poll() is None)
        small = {"image": base64.b64encode(cv2.imencode(".png", np.zeros((64, 64, 3), np.uint8))[1]).decode()}
        assert requests.post(url + "/instance-segmentation", json=small, timeout=120).status_code == 200
        idle_mb = status_kb(process.pid, "VmRSS") / 1024
        statuses = []
        clients = [threading.Thread(target=lambda: statuses.append(
            requests.post(url + "/instance-segmentation", json=payload, timeout=600).status_code))
            for _ in range(CLIENTS)]
        for client in clients:
            client.start()
        for client in clients:
            client.join()
        return {"idle_rss_mb": idle_mb, "peak_rss_mb": status_kb(process.pid, "VmHWM") / 1024,
                "statuses": sorted(statuses)}
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(120)


@pytest.mark.parametrize("options", [[], ["--max-decodes", "1"]], ids=["defaults", "max-decodes-1"])
def test_serve_peak_memory_under_a_burst_of_large_images(benchmark, standin_dir, options):
    if benchmark.disabled:
        pytest.skip("memory burst: run with `make bench` (pytest benchmarks --benchmark-enable)")
    payload = {"image": base64.b64encode(big_png()).decode("ascii")}
    stats = benchmark.pedantic(burst, args=(standin_dir, options, payload), rounds=1, iterations=1)
    benchmark.extra_info.update(stats)
    print(f"\nedge serve {' '.join(options) or '(default limits)'}: {CLIENTS} concurrent {SIDE}x{SIDE} PNGs "
          f"({len(payload['image']) / 2**20:.1f} MiB Base64 each): RSS idle {stats['idle_rss_mb']:.0f} MB, "
          f"peak {stats['peak_rss_mb']:.0f} MB; statuses {stats['statuses']}")
    assert stats["statuses"] == [200] * CLIENTS
    # the README's bound: above idle, about 2 x max_decodes + 2 decoded images (the one being
    # computed is copied for pre-processing and for the picture); one image of margin
    decodes = int(options[1]) if options else 2
    image_mb = SIDE * SIDE * 3 / 2**20
    assert stats["peak_rss_mb"] - stats["idle_rss_mb"] < (2 * decodes + 3) * image_mb, stats
