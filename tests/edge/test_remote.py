"""The `remote` predictor against a real `edge serve` on loopback, and the pipeline's fallback policy."""
from __future__ import annotations

import shutil
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import pytest

from edge.errors import BackendError, ConfigError, RemoteError
from edge.pipeline import create_pipeline
from edge.predictor import FallbackPredictor
from edge.remote import RemotePredictor
from edge.serve.app import create_app
from edge.serve.limits import ServeLimits
from edge.serve.runner import BackgroundServer, pipeline_factory

THRESHOLD = 0.3


def module(model_dir=None, **extra) -> dict:
    return {"model_dir": str(model_dir) if model_dir else None, **extra}


def config(module_keys: dict, **serving) -> dict:
    return {"SubModules": {"InstanceSegmentation": module_keys}, "Serving": serving}


@pytest.fixture(autouse=True)
def _no_proxy_for_loopback(monkeypatch):
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")


@pytest.fixture(scope="module")
def server(standin_edge):
    factory = pipeline_factory("instance_segmentation", config(module(standin_edge.inference_dir)))
    live = BackgroundServer(create_app(factory, ServeLimits(max_pixels=1_000_000))).start()
    yield live
    live.stop()


@pytest.fixture(scope="module")
def local_results(standin_edge, sample_images):
    local = create_pipeline(config=config(module(standin_edge.inference_dir)))
    return list(local.predict([str(p) for p in sample_images[:4]], threshold=THRESHOLD))


def closed_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{sock.getsockname()[1]}"


def assert_same(results, expected, computed_by_prefix: str) -> None:
    assert len(results) == len(expected)
    compared = 0
    for got, want in zip(results, expected):
        assert got.computed_by.startswith(computed_by_prefix), got.computed_by
        assert got["input_path"] == want["input_path"]
        assert [b["cls_id"] for b in got["boxes"]] == [b["cls_id"] for b in want["boxes"]]
        assert [b["label"] for b in got["boxes"]] == [b["label"] for b in want["boxes"]]
        for gb, wb, gm, wm in zip(got["boxes"], want["boxes"], got["masks"], want["masks"]):
            assert gb["coordinate"] == wb["coordinate"]
            assert abs(gb["score"] - wb["score"]) <= 1e-5
            assert gm.dtype == np.uint8 and gm.shape == wm.shape
            np.testing.assert_array_equal(gm, wm)
            compared += 1
    assert compared > 20


def test_remote_backend_matches_local_paddle(server, local_results, sample_images):
    remote = create_pipeline(config=config(module(backend="remote"), url=server.url))
    assert isinstance(remote.predictor, RemotePredictor)
    results = list(remote.predict([str(p) for p in sample_images[:4]], threshold=THRESHOLD))
    assert {r.computed_by for r in results} == {f"remote:{server.url}/instance-segmentation"}
    assert {r.computed_by for r in local_results} == {"paddle"}
    assert_same(results, local_results, "remote:")
    assert results[0].img["res"].size == (results[0].image.shape[1], results[0].image.shape[0])


def test_server_only_model_is_answered_by_the_server(server, local_results, sample_images):
    pipeline = create_pipeline(config=config({"model_name": "Mask-RT-DETR-L", "model_dir": None}, url=server.url))
    results = list(pipeline.predict([str(p) for p in sample_images[:4]], threshold=THRESHOLD))
    assert_same(results, local_results, f"remote:{server.url}")


def test_server_down_is_a_clear_error_naming_the_url(sample_images):
    url = closed_url()
    pipeline = create_pipeline(config=config({"model_name": "MaskRCNN-ResNet50-FPN", "model_dir": None}, url=url))
    with pytest.raises(RemoteError, match="cannot be reached") as info:
        next(pipeline.predict(str(sample_images[0])))
    assert f"{url}/instance-segmentation" in str(info.value) and "edge serve" in str(info.value)


def test_on_error_sends_a_failing_local_model_to_the_server(server, local_results, sample_images, broken_model_dir):
    broken = broken_model_dir
    paths = [str(p) for p in sample_images[:4]]
    without = create_pipeline(config=config(module(broken), url=server.url))  # default policy: server_only
    with pytest.raises(BackendError):
        next(without.predict(paths[0], threshold=THRESHOLD))
    with_fallback = create_pipeline(config=config(module(broken), url=server.url, fallback="on_error"))
    assert isinstance(with_fallback.predictor, FallbackPredictor)
    assert_same(list(with_fallback.predict(paths, threshold=THRESHOLD)), local_results, "remote:")
    down = create_pipeline(config=config(module(broken), url=closed_url(), fallback="on_error"))
    with pytest.raises(RemoteError, match=r"(?s)local inference failed .* and so did the fallback"):
        next(down.predict(paths[0], threshold=THRESHOLD))


def test_on_error_with_no_local_model_uses_the_server(server, tmp_path, local_results, sample_images):
    pipeline = create_pipeline(config=config(module(tmp_path / "not-copied-yet"), url=server.url, fallback="on_error"))
    assert isinstance(pipeline.predictor, RemotePredictor)
    results = list(pipeline.predict([str(p) for p in sample_images[:4]], threshold=THRESHOLD))
    assert_same(results, local_results, "remote:")


def test_latency_budget_routes_to_the_server_and_probes_locally(server, standin_edge, sample_images):
    image = str(sample_images[0])
    slow = create_pipeline(config=config(module(standin_edge.inference_dir), url=server.url, fallback="on_error",
                                         latency_budget_ms=1e-6))
    where = [r.computed_by for r in slow.predict([image] * 12, threshold=THRESHOLD)]
    remote_name = slow.predictor.remote.name
    assert where == ["paddle"] + [remote_name] * 9 + ["paddle", remote_name]
    fast = create_pipeline(config=config(module(standin_edge.inference_dir), url=server.url, fallback="on_error",
                                         latency_budget_ms=60_000))
    assert {r.computed_by for r in fast.predict([image] * 3, threshold=THRESHOLD)} == {"paddle"}


def test_fallback_never_keeps_server_only_models_local(server, standin_edge, tmp_path, monkeypatch, photo):
    # a local copy in the official-model cache stands in for SOLOv2's inference directory
    monkeypatch.setenv("EDGE_CACHE", str(tmp_path))
    shutil.copytree(standin_edge.inference_dir, tmp_path / "official" / "SOLOv2_infer")
    solo = {"model_name": "SOLOv2", "model_dir": None}
    local = create_pipeline(config=config(solo, url=server.url, fallback="never"))
    assert next(local.predict(photo)).computed_by == "paddle"
    served = create_pipeline(config=config(solo, url=server.url))  # default server_only
    assert next(served.predict(photo)).computed_by.startswith("remote:")
    no_url = create_pipeline(config=config(solo))  # no server configured: local
    assert next(no_url.predict(photo)).computed_by == "paddle"


def test_server_errors_become_remote_errors(server, photo):
    predictor = RemotePredictor({"url": server.url + "/", "timeout": 30}, "StandIn-Seg")
    big = np.zeros((1200, 1000, 3), np.uint8)  # over this server's max_pixels (1,000,000)
    with pytest.raises(RemoteError, match=r"answered HTTP 400 \(errorCode 400, logId .*max_pixels") as info:
        predictor(big, THRESHOLD)
    assert server.url in str(info.value)
    assert predictor(photo, THRESHOLD).boxes  # and it keeps working


def test_not_a_serving_endpoint(server):
    predictor = RemotePredictor({"url": server.url + "/docs"}, None)
    with pytest.raises(RemoteError, match="not the serving envelope|answered HTTP 40"):
        predictor(np.zeros((8, 8, 3), np.uint8), THRESHOLD)


def test_remote_needs_an_http_url():
    with pytest.raises(ConfigError, match="Serving.url"):
        create_pipeline(config=config(module(backend="remote")))
    with pytest.raises(ConfigError, match="http"):
        RemotePredictor({"url": "file:///tmp/socket"}, None)
    with pytest.raises(ConfigError, match="latency_budget_ms"):
        create_pipeline(config=config(module(backend="remote"), url="http://127.0.0.1:1", latency_budget_ms=-5))


# --- several servers: spread, skipped while down or busy, back after a health check ---------------


class _Busy(BaseHTTPRequestHandler):
    """A server that answers every request 503 + Retry-After (its /health too), and counts them."""

    posts = 0
    health_checks = 0

    def _busy(self) -> None:
        body = b'{"logId": "x", "errorCode": 503, "errorMsg": "the server is busy"}'
        self.send_response(503)
        self.send_header("Retry-After", "1")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self) -> None:  # noqa: N802
        type(self).posts += 1
        self.rfile.read(int(self.headers["Content-Length"]))
        self._busy()

    def do_GET(self) -> None:  # noqa: N802
        type(self).health_checks += 1
        self._busy()

    def log_message(self, *args) -> None:
        pass


@pytest.fixture()
def busy_url():
    _Busy.posts = _Busy.health_checks = 0
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Busy)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture()
def second_server(standin_edge):
    factory = pipeline_factory("instance_segmentation", config(module(standin_edge.inference_dir)))
    live = BackgroundServer(create_app(factory, ServeLimits())).start()
    yield live
    live.stop()


def test_images_are_spread_over_the_servers(server, second_server, local_results, sample_images):
    pipeline = create_pipeline(config=config(module(backend="remote"), url=[server.url, second_server.url]))
    results = list(pipeline.predict([str(p) for p in sample_images[:4]], threshold=THRESHOLD))
    assert_same(results, local_results, "remote:")
    assert [r.computed_by for r in results] == [f"remote:{url}/instance-segmentation"
                                                for url in (server.url, second_server.url) * 2]


def test_a_busy_server_is_asked_once_then_left_while_its_health_fails(server, busy_url, local_results, sample_images):
    pipeline = create_pipeline(config=config(module(backend="remote"), url=[busy_url, server.url]))
    paths = [str(p) for p in sample_images[:4]]
    results = list(pipeline.predict(paths + paths, threshold=THRESHOLD))
    assert {r.computed_by for r in results} == {f"remote:{server.url}/instance-segmentation"}
    assert_same(results[:4], local_results, "remote:")
    assert _Busy.posts == 1  # after its 503, the image went to the next server; later only /health was asked


def test_a_stopped_server_is_skipped_and_used_again_once_it_is_back(server, standin_edge, sample_images):
    factory = pipeline_factory("instance_segmentation", config(module(standin_edge.inference_dir)))
    other = BackgroundServer(create_app(factory, ServeLimits())).start()
    urls = [server.url, other.url]
    pipeline = create_pipeline(config=config(module(backend="remote"), url=urls))
    names = {url: f"remote:{url}/instance-segmentation" for url in urls}
    image = str(sample_images[0])
    assert {r.computed_by for r in pipeline.predict([image] * 2)} == set(names.values())
    other.stop()
    assert {r.computed_by for r in pipeline.predict([image] * 4)} == {names[server.url]}  # no error
    back = BackgroundServer(create_app(factory, ServeLimits()), port=other.port).start()  # same address again
    try:  # once its back-off (1 s, 2 s, ... as it failed) is over, a /health answer lets it in again
        deadline = time.monotonic() + 40
        where = []
        while names[other.url] not in where:
            assert time.monotonic() < deadline, where
            where.append(next(pipeline.predict(image)).computed_by)
            time.sleep(0.2)
    finally:
        back.stop()


def test_every_server_failing_is_one_error_naming_each(busy_url, sample_images):
    down = closed_url()
    pipeline = create_pipeline(config=config(module(backend="remote"), url=[down, busy_url]))
    with pytest.raises(RemoteError, match="none of the 2 servers answered") as info:
        next(pipeline.predict(str(sample_images[0])))
    assert f"{down}/instance-segmentation" in str(info.value) and "cannot be reached" in str(info.value)
    assert f"{busy_url}/instance-segmentation answered HTTP 503" in str(info.value)


def test_on_error_fallback_uses_the_server_list(server, broken_model_dir, local_results, sample_images):
    down = closed_url()
    pipeline = create_pipeline(config=config(module(broken_model_dir), url=[down, server.url], fallback="on_error"))
    assert isinstance(pipeline.predictor, FallbackPredictor)
    results = list(pipeline.predict([str(p) for p in sample_images[:4]], threshold=THRESHOLD))
    assert {r.computed_by for r in results} == {f"remote:{server.url}/instance-segmentation"}
    assert_same(results, local_results, "remote:")


def test_a_bad_image_is_not_asked_of_another_server(server, busy_url):
    predictor = RemotePredictor({"url": [server.url, busy_url]}, None)
    with pytest.raises(RemoteError, match=r"answered HTTP 400"):
        predictor(np.zeros((1200, 1000, 3), np.uint8), THRESHOLD)  # over the first server's max_pixels
    assert _Busy.posts == 0


def test_server_list_needs_http_urls():
    with pytest.raises(ConfigError, match="list of them"):
        RemotePredictor({"url": ["http://127.0.0.1:1", "ftp://x"]}, None)
    with pytest.raises(ConfigError, match="Serving.url"):
        RemotePredictor({"url": []}, None)
