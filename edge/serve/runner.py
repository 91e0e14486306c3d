"""Start the server: one pipeline per worker, uvicorn on host:port, graceful shutdown."""
from __future__ import annotations

import logging
import threading
import time
from pathlib import Path
from typing import Any, Callable, Dict, Optional, Union

from ..config import _merge, load_config, module_config
from ..errors import ConfigError, ServerError
from .codec import HEALTH_PATH
from .limits import ServeLimits

logger = logging.getLogger(__name__)

DEFAULT_HOST = "0.0.0.0"  # PaddleX's default: every interface; pass --host 127.0.0.1 for this machine only
DEFAULT_PORT = 8080


def pipeline_factory(pipeline: Union[str, Path], overrides: Optional[Dict[str, Any]] = None) -> Callable[[], Any]:
    """A function that builds the server's pipeline, the same one `edge predict` builds.

    The server computes locally: `Serving.fallback` is forced to `never` (a server must not
    forward to a server) and `backend: remote` is refused.
    """
    from ..pipeline import create_pipeline

    config = _merge(load_config(pipeline, overrides), {"Serving": {"fallback": "never", "latency_budget_ms": None}})
    if module_config(config).get("backend") == "remote":
        raise ConfigError("`edge serve` computes locally: backend 'remote' is not allowed; use auto, paddle or lite")
    return lambda: create_pipeline(pipeline, config=config)


def serve(make_pipeline: Callable[[], Any], host: str = DEFAULT_HOST, port: int = DEFAULT_PORT,
          limits: ServeLimits = ServeLimits(), visualize: bool = True, log_level: str = "info") -> None:
    """Build the app (loads the model `limits.workers` times) and serve until SIGINT / SIGTERM."""
    import uvicorn

    from .app import create_app

    app = create_app(make_pipeline, limits, visualize=visualize)
    logger.info("serving on http://%s:%d (docs at /docs); %d worker(s), queue %d", host, port,
                limits.workers, limits.max_queue)
    config = uvicorn.Config(app, host=host, port=port, log_level=log_level,
                            timeout_graceful_shutdown=limits.graceful_timeout)
    uvicorn.Server(config).run()


class BackgroundServer:
    """uvicorn in a thread of this process: for notebooks, embedding and tests.

    `port=0` picks a free port; `url` is known once `start()` returns. `stop()` asks uvicorn to
    exit the way SIGTERM does: it stops accepting, finishes the requests in flight (up to
    `graceful_timeout`), then runs the app's shutdown.
    """

    def __init__(self, app: Any, host: str = "127.0.0.1", port: int = 0, graceful_timeout: float = 30.0,
                 log_level: str = "warning"):
        import uvicorn

        self.host = host
        self.server = uvicorn.Server(uvicorn.Config(app, host=host, port=port, log_level=log_level,
                                                   timeout_graceful_shutdown=graceful_timeout))
        self._thread: Optional[threading.Thread] = None
        self.port = port

    def start(self, timeout: float = 30.0) -> "BackgroundServer":
        self._thread = threading.Thread(target=self.server.run, name="edge-serve", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self.server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise ServerError(f"the server did not start on {self.host}:{self.port}")
            time.sleep(0.02)
        self.port = self.server.servers[0].sockets[0].getsockname()[1]
        return self

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def stop(self, timeout: float = 60.0) -> None:
        self.server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout)

    def __enter__(self) -> "BackgroundServer":
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()


def wait_until_healthy(url: str, alive: Callable[[], bool] = lambda: True, timeout: float = 60.0) -> None:
    """Poll `<url>/health` until it answers 200; fail early when `alive()` says the server died."""
    import time

    import requests

    deadline = time.monotonic() + timeout
    while True:
        try:
            if requests.get(url + HEALTH_PATH, timeout=1).status_code == 200:
                return
        except requests.ConnectionError:
            pass
        if not alive():
            raise ServerError(f"the server at {url} exited before it answered /health")
        if time.monotonic() > deadline:
            raise ServerError(f"the server at {url} did not answer {HEALTH_PATH} within {timeout:.0f} s")
        time.sleep(0.2)
