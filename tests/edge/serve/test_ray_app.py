"""`edge serve --ray` on a real local Ray cluster: a replica that dies under load.

(The contract and bad-input tests run against the same server through the `server` fixture.)
"""
from __future__ import annotations

import os
import signal
import threading
import time

import cv2
import requests

from serving_helpers import assert_envelope, b64

INFER = "/instance-segmentation"
CLIENTS, ROUNDS = 6, 4


def test_a_replica_killed_mid_load_costs_at_most_a_retryable_503(ray_server, sample_images):
    """In-flight requests complete or get 503 + Retry-After; none hangs; the next ones succeed; Ray restarts it."""
    deadline = time.monotonic() + 120
    while len(ray_server.replica_pids()) != 2:  # a replica killed by an earlier run may still be restarting
        assert time.monotonic() < deadline, ray_server.replica_pids()
        time.sleep(0.5)
    victim = ray_server.replica_pids()[0]
    # 2400x1800 and visualised: about a second of replica work each, so the victim surely has work in flight
    images = [b64(cv2.imencode(".jpg", cv2.resize(cv2.imread(str(p)), (2400, 1800)))[1].tobytes())
              for p in sample_images[:3]]
    answers, failures = [], []
    first_answers = threading.Semaphore(0)

    def client(index: int) -> None:
        with requests.Session() as session:
            for round_ in range(ROUNDS):
                try:
                    response = session.post(ray_server.url + INFER, timeout=60,
                                            json={"image": images[(index + round_) % 3]})
                    answers.append((response.status_code, response.headers.get("Retry-After"), response.json()))
                except Exception as err:  # a timeout (a hung request) or a broken connection
                    failures.append(repr(err))
                first_answers.release()

    threads = [threading.Thread(target=client, args=(i,), daemon=True) for i in range(CLIENTS)]
    for thread in threads:
        thread.start()
    assert first_answers.acquire(timeout=60)  # the load is on: requests are queued on both replicas
    os.kill(victim, signal.SIGKILL)
    for thread in threads:
        thread.join(180)
    assert not any(thread.is_alive() for thread in threads), "a request hung"
    assert not failures, failures
    assert len(answers) == CLIENTS * ROUNDS
    for status, retry_after, body in answers:
        assert status in (200, 503), (status, body)
        assert_envelope(body, status)
        if status == 503:
            assert retry_after == "1" and "retry" in body["errorMsg"], body
    print(f"{sum(s == 503 for s, _, _ in answers)} of {len(answers)} requests answered 503 after the kill")
    for path in sample_images[:3] * 2:  # the next requests succeed (the live replica takes them)
        response = requests.post(ray_server.url + INFER, json={"image": b64(path.read_bytes())}, timeout=60)
        assert response.status_code == 200, response.text
    deadline = time.monotonic() + 180
    while True:  # Ray starts a new replica in place of the dead one
        pids = ray_server.replica_pids()
        if len(pids) == 2 and victim not in pids:
            break
        assert time.monotonic() < deadline, f"the killed replica was not replaced: {pids}"
        time.sleep(1)
    assert requests.get(ray_server.url + "/health", timeout=30).status_code == 200
