"""`edge serve --ray`: throughput and p50 / p99 with 1 vs 2 model replicas, side by side in one run.

A local Ray cluster (head + one worker node, `--num-cpus 1` each, as in the tests) serves the
stand-in and one real network (PP-YOLOE_seg-S, edge graph, 640x640, seeded random weights,
Paddle Inference, one thread per replica); for each, `edge serve --ray --replicas 1`, then
`--replicas 2`, each under CLIENTS concurrent clients on loopback for 30 s (stand-in) or 90 s
(PP-YOLOE_seg-S: about 3 s an image on one core; EDGE_RAY_LOAD_SECONDS sets both). Reports req/s, p50, p99 and the 2-over-1 throughput ratio (printed and in extra_info).

On a 2-core machine the ceiling is 2x, less what Ray's proxy, the ingress, the clients and the
other processes take from the same two cores; on a real cluster (`ray up`, KubeRay) each replica
has cores of its own. Skipped unless benchmarks are enabled (`make bench`).
"""
from __future__ import annotations

import base64
import os
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import requests

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "edge" / "serve"))  # ray_helpers: the cluster the tests use

PHOTO = ROOT / "samples" / "coco" / "000000087038.jpg"  # 640x480
CLIENTS = 4
DURATION_S = {"stand-in": 30.0, "PP-YOLOE_seg-S": 90.0}
if os.environ.get("EDGE_RAY_LOAD_SECONDS"):
    DURATION_S = {name: float(os.environ["EDGE_RAY_LOAD_SECONDS"]) for name in DURATION_S}


@pytest.fixture(scope="module")
def cluster(long_benchmark):
    pytest.importorskip("ray.serve", reason="Ray Serve is not installed: pip install 'paddlex-edge-seg[cluster]'")
    from ray_helpers import RayCluster

    live = RayCluster().start()
    yield live
    live.stop()


def load(url: str, duration_s: float) -> dict:
    """CLIENTS clients for `duration_s`; requests sent in the first quarter (at most 10 s) are warm-up."""
    payload = {"image": base64.b64encode(PHOTO.read_bytes()).decode("ascii")}
    warmup_s = min(10.0, duration_s / 4)
    start = time.monotonic()
    stop_at = start + duration_s
    latencies, unexpected, lock = [], [], threading.Lock()

    def client() -> None:
        with requests.Session() as session:
            while time.monotonic() < stop_at:
                sent = time.monotonic()
                try:
                    response = session.post(url + "/instance-segmentation", json=payload, timeout=120)
                    problem = None if response.status_code == 200 and response.json()["errorCode"] == 0 \
                        else f"HTTP {response.status_code}: {response.text[:200]}"
                except Exception as err:  # counted, not raised
                    problem = f"{type(err).__name__}: {err}"
                with lock:
                    if problem:
                        unexpected.append(problem)
                    elif sent >= start + warmup_s:
                        latencies.append(time.monotonic() - sent)

    threads = [threading.Thread(target=client) for _ in range(CLIENTS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    values = np.asarray(latencies) * 1000.0
    return {"requests": len(latencies), "throughput_rps": len(latencies) / (duration_s - warmup_s),
            "p50_ms": float(np.percentile(values, 50)) if len(values) else None,
            "p99_ms": float(np.percentile(values, 99)) if len(values) else None,
            "unexpected_errors": len(unexpected), "first_errors": unexpected[:3]}


@pytest.mark.parametrize("network", ["stand-in", "PP-YOLOE_seg-S"])
def test_one_vs_two_replicas(network, cluster, benchmark, tmp_path):
    if benchmark.disabled:
        pytest.skip("load test: run with `make bench` (pytest benchmarks --benchmark-enable)")
    import export  # noqa: F401
    import paddle
    from ray_helpers import RayServer

    paddle.seed(0)
    if network == "stand-in":
        from standin import export_standin

        model_dir = export_standin(tmp_path / "standin", graph="edge")
    else:
        from export.networks.ppyoloe_seg import export_ppyoloe_seg

        model_dir = export_ppyoloe_seg(tmp_path / "ppyoloe", graph="edge")
    figures = {}

    def measure() -> None:
        for replicas in (1, 2):
            server = RayServer(cluster, model_dir, "--replicas", str(replicas), "--threads", "1",
                               "--max-queue", str(2 * CLIENTS)).start()
            try:
                figures[replicas] = load(server.url, DURATION_S[network])
            finally:
                server.stop()

    benchmark.pedantic(measure, rounds=1, iterations=1)
    ratio = figures[2]["throughput_rps"] / figures[1]["throughput_rps"]
    benchmark.extra_info.update({"replicas_1": figures[1], "replicas_2": figures[2], "throughput_ratio_2_over_1": ratio,
                                 "clients": CLIENTS, "duration_s": DURATION_S[network]})
    for replicas, stats in figures.items():
        print(f"\n{network}, edge serve --ray --replicas {replicas}, {CLIENTS} clients x {DURATION_S[network]:g} s: "
              f"{stats['requests']} requests, {stats['throughput_rps']:.2f} req/s, p50 {stats['p50_ms']:.0f} ms, "
              f"p99 {stats['p99_ms']:.0f} ms, unexpected errors {stats['unexpected_errors']}")
    print(f"{network}: throughput 2 replicas / 1 replica = {ratio:.2f}")
    for stats in figures.values():
        assert stats["unexpected_errors"] == 0, stats["first_errors"]
        assert stats["requests"] > 0
