"""Load test of `edge serve` on loopback: the stand-in model, 1 worker and one worker per core.

Skipped unless benchmarks are enabled (`make bench`, or `pytest benchmarks --benchmark-enable`):
`make test` stays fast. The server runs as its own process (`python -m edge.cli serve`, one
inference thread per worker: `--threads 1`), so its RSS is measured alone. For each worker count,
in the same run against the same server:

1. single stream: one client, one request at a time, for a quarter of the duration -> the rate
   one worker sustains alone (req/s);
2. load: 8 concurrent clients for the duration (after a warm-up) -> throughput, p50 / p99;
   `efficiency` = throughput / (workers x single-stream rate), the goal being >= 0.9 (reported,
   not asserted: it is a property of the machine as much as of the server).

Checks: no unexpected answer (every one is 200 with the envelope), server RSS growth after
warm-up < 10 %. Figures are printed and kept in the benchmark's extra_info (`make bench` writes
them into the README). EDGE_LOAD_SECONDS shortens the run for a quick look.
"""
from __future__ import annotations

import base64
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import requests

from edge.serve.runner import wait_until_healthy

ROOT = Path(__file__).resolve().parents[1]
PHOTO = ROOT / "samples" / "coco" / "000000087038.jpg"  # 640x480
CLIENTS = 8
DURATION_S = float(os.environ.get("EDGE_LOAD_SECONDS", 60))
WARMUP_S = min(10.0, DURATION_S / 4)
MAX_REQUESTS_PER_CLIENT = 100_000  # a bound in count as well as in time
CORES = len(os.sched_getaffinity(0))
WORKER_COUNTS = sorted({1, CORES})
EFFICIENCY_GOAL = 0.9


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS")


@pytest.fixture(scope="module")
def standin_dir(long_benchmark, tmp_path_factory) -> Path:
    import export  # noqa: F401  (legacy programs before paddle is imported)
    from standin import export_standin

    return export_standin(tmp_path_factory.mktemp("load") / "standin", graph="edge")


@pytest.fixture(params=WORKER_COUNTS, ids=lambda n: f"{n}-worker")
def served_standin(request, standin_dir):
    workers = request.param
    port = free_port()
    env = {**os.environ, "NO_PROXY": "127.0.0.1", "no_proxy": "127.0.0.1"}
    process = subprocess.Popen(
        [sys.executable, "-m", "edge.cli", "serve", "--model-dir", str(standin_dir), "--host", "127.0.0.1",
         "--port", str(port), "--workers", str(workers), "--threads", "1", "--max-queue", str(2 * CLIENTS)],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    wait_until_healthy(url, alive=lambda: process.poll() is None)
    yield url, process.pid, workers
    process.send_signal(signal.SIGTERM)
    process.wait(60)


def single_stream_rps(url: str, payload: dict, seconds: float) -> float:
    """Requests per second of one client sending one request at a time (after 3 unmeasured ones)."""
    with requests.Session() as session:
        for _ in range(3):
            session.post(url + "/instance-segmentation", json=payload, timeout=60).raise_for_status()
        count, start = 0, time.monotonic()
        while time.monotonic() - start < seconds:
            session.post(url + "/instance-segmentation", json=payload, timeout=60).raise_for_status()
            count += 1
        return count / (time.monotonic() - start)


def run_load(url: str, pid: int, workers: int) -> dict:
    payload = {"image": base64.b64encode(PHOTO.read_bytes()).decode("ascii")}  # server default: visualise
    single = single_stream_rps(url, payload, max(3.0, DURATION_S / 4))
    start = time.monotonic()
    stop_at = start + DURATION_S
    latencies, unexpected, lock = [], [], threading.Lock()
    rss = {"baseline": None, "samples": []}

    def client() -> None:
        with requests.Session() as session:
            for _ in range(MAX_REQUESTS_PER_CLIENT):
                if time.monotonic() >= stop_at:
                    return
                sent = time.monotonic()
                try:
                    response = session.post(url + "/instance-segmentation", json=payload, timeout=60)
                    body = response.json()
                    ok = response.status_code == 200 and body["errorCode"] == 0 and "image" in body["result"]
                    problem = None if ok else f"HTTP {response.status_code}: {body.get('errorMsg')}"
                except Exception as err:  # counted, not raised: the run goes on
                    problem = f"{type(err).__name__}: {err}"
                elapsed = time.monotonic() - sent
                with lock:
                    if problem:
                        unexpected.append(problem)
                    elif sent >= start + WARMUP_S:
                        latencies.append(elapsed)

    def monitor() -> None:
        while time.monotonic() < stop_at:
            now = time.monotonic()
            if now >= start + WARMUP_S:
                value = rss_bytes(pid)
                if rss["baseline"] is None:
                    rss["baseline"] = value
                rss["samples"].append(value)
            time.sleep(0.5)

    threads = [threading.Thread(target=client) for _ in range(CLIENTS)] + [threading.Thread(target=monitor)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    measured_s = DURATION_S - WARMUP_S
    values = np.asarray(latencies) * 1000.0
    throughput = len(latencies) / measured_s
    return {
        "workers": workers, "cores": CORES, "single_stream_rps": single, "ideal_rps": workers * single,
        "efficiency": throughput / (workers * single),
        "clients": CLIENTS, "duration_s": DURATION_S, "warmup_s": WARMUP_S, "requests": len(latencies),
        "unexpected_errors": len(unexpected), "first_errors": unexpected[:5],
        "p50_ms": float(np.percentile(values, 50)) if len(values) else None,
        "p99_ms": float(np.percentile(values, 99)) if len(values) else None,
        "throughput_rps": throughput,
        "rss_after_warmup_mb": rss["baseline"] / 2**20, "rss_end_mb": rss_bytes(pid) / 2**20,
        "rss_peak_mb": max(rss["samples"]) / 2**20,
    }


def test_serve_under_load(benchmark, served_standin):
    if benchmark.disabled:
        pytest.skip("load test: run with `make bench` (pytest benchmarks --benchmark-enable)")
    url, pid, workers = served_standin
    stats = benchmark.pedantic(run_load, args=(url, pid, workers), rounds=1, iterations=1)
    benchmark.extra_info.update(stats)
    growth = stats["rss_end_mb"] / stats["rss_after_warmup_mb"] - 1
    print(f"\nedge serve, stand-in model, {workers} worker(s) on {CORES} cores, {CLIENTS} clients x {DURATION_S:g} s "
          f"on loopback: {stats['requests']} requests after warm-up, {stats['throughput_rps']:.1f} req/s = "
          f"{stats['efficiency']:.2f} x ({workers} x single stream {stats['single_stream_rps']:.1f} req/s; goal "
          f">= {EFFICIENCY_GOAL}), p50 {stats['p50_ms']:.1f} ms, p99 {stats['p99_ms']:.1f} ms, "
          f"unexpected errors {stats['unexpected_errors']}, RSS {stats['rss_after_warmup_mb']:.1f} -> "
          f"{stats['rss_end_mb']:.1f} MB ({growth:+.1%}), peak {stats['rss_peak_mb']:.1f} MB")
    assert stats["unexpected_errors"] == 0, stats["first_errors"]
    assert stats["requests"] > 0
    assert growth < 0.10, f"server RSS grew {growth:.1%} after warm-up"
