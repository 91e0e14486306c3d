"""A real server on 127.0.0.1 (free port) serving the stand-in model, and a small image host.

`server` is the plain `edge serve` app (uvicorn in a thread), then the same app on Ray Serve
(`edge serve --ray` on a local two-node Ray cluster, ray_helpers.py): every test that takes
`server` runs against both. The Ray one is skipped when Ray Serve is not installed (the optional
extra `[cluster]`; `make test` installs it).
"""
from __future__ import annotations

import importlib.util
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Dict, Iterator, Tuple

import pytest

from edge.serve.runner import BackgroundServer
from serving_helpers import start_server


@pytest.fixture(autouse=True)
def _no_proxy_for_loopback(monkeypatch):
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")


@pytest.fixture(scope="module", params=["plain", "ray"])
def server(request, standin_edge) -> Iterator[BackgroundServer]:
    """The stand-in (edge graph, Paddle Inference) behind the contract; loopback URLs allowed."""
    if request.param == "ray":
        yield request.getfixturevalue("ray_server")
        return
    live = start_server(standin_edge.inference_dir)
    yield live
    live.stop()


@pytest.fixture(scope="session")
def ray_cluster():
    """A local Ray cluster: head + one worker node, `--num-cpus 1` each; every process ended by PID."""
    if importlib.util.find_spec("ray") is None:
        pytest.skip("Ray Serve is not installed: pip install 'paddlex-edge-seg[cluster]'")
    from ray_helpers import RayCluster

    cluster = RayCluster().start()
    yield cluster
    cluster.stop()


@pytest.fixture(scope="session")
def ray_server(ray_cluster, standin_edge):
    """`edge serve --ray --replicas 2` on that cluster (one replica per node), loopback URLs allowed."""
    from ray_helpers import RayServer

    live = RayServer(ray_cluster, standin_edge.inference_dir, "--replicas", "2", "--allow-private-urls").start()
    yield live
    assert live.stop() == 0, live.log()[-3000:]  # SIGTERM: the app deleted, Serve shut down, exit 0


class _ImageHost(BaseHTTPRequestHandler):
    """GET /<name> returns a stored file; /slow/<name> first waits for `release` (in-flight tests);
    /trickle/<name> sends its bytes one every 0.25 s (at most 40 of them); /redirect/<location>
    answers 302 to that (unchecked) location."""

    files: Dict[str, bytes] = {}
    slow_started = threading.Event()
    release = threading.Event()

    def do_GET(self) -> None:  # noqa: N802 (http.server's name)
        path = self.path
        if path.startswith("/redirect/"):
            self.send_response(302)
            self.send_header("Location", path[len("/redirect/"):])
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        if path.startswith("/trickle/"):
            body = self.files[path[len("/trickle"):]]
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            try:
                for byte in body[:40]:
                    self.wfile.write(bytes([byte]))
                    self.wfile.flush()
                    time.sleep(0.25)
            except OSError:  # the client gave up
                pass
            return
        if path.startswith("/slow/"):
            self.slow_started.set()
            self.release.wait(10)
            path = path[len("/slow"):]
        body = self.files.get(path)
        self.send_response(200 if body is not None else 404)
        payload = body if body is not None else b"not found"
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, *args) -> None:
        pass


@pytest.fixture(scope="session")
def image_host(sample_images) -> Iterator[Tuple[str, type]]:
    """(base URL, handler class) of an HTTP server on 127.0.0.1 with the sample photos."""
    _ImageHost.files = {f"/{p.name}": p.read_bytes() for p in sample_images}
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _ImageHost)
    httpd.daemon_threads = True
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}", _ImageHost
    _ImageHost.release.set()
    httpd.shutdown()
    httpd.server_close()
