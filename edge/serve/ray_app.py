"""`edge serve --ray`: the same FastAPI app on Ray Serve, the model in replicas of its own.

Two deployments (settings from cluster.py):

* `EdgeModel`: one pipeline (one model copy) per replica, one image at a time; `--replicas N` or
  `--autoscale MIN:MAX` scale it over the cluster's nodes; Ray restarts a replica that dies.
* `EdgeIngress`: the app of app.py, unchanged (gate, limits, envelopes, `/health`, OpenAPI),
  whose "workers" are the EdgeModel replicas (`RayWorkers`). It holds no model.

Why not the app inside each model replica: a replica that dies mid-request is then answered by
Ray's HTTP proxy with a bare 500 (or no answer at all); here the ingress sees the death of the
replica that computed and answers the contract's 503 with Retry-After, and the next request goes
to a live replica.

This module imports Ray: only `edge serve --ray` and Ray Serve config files (`APP_IMPORT_PATH`)
load it.
"""
from __future__ import annotations

import logging
import os
import signal
import threading
import time
from typing import Any, Callable, Dict, Optional, TypeVar

import ray
from ray import serve
from ray.exceptions import RayActorError
from ray.serve.exceptions import BackPressureError, DeploymentUnavailableError

from .app import create_app
from .cluster import APP_NAME, ClusterOptions
from .runner import pipeline_factory
from .worker import Admission, ServerUnavailable

logger = logging.getLogger(__name__)
T = TypeVar("T")
_REPLICA_GONE = (RayActorError, BackPressureError, DeploymentUnavailableError)


class EdgeModel:
    """One model copy; `run(job, *args)` is `job(pipeline, *args)`, one at a time (Paddle's rule)."""

    def __init__(self, pipeline: str, overrides: Optional[Dict[str, Any]]):
        self.pipeline = pipeline_factory(pipeline, overrides)()
        self._lock = threading.Lock()

    def run(self, job: Callable[..., T], *args: Any) -> T:
        with self._lock:
            return job(self.pipeline, *args)


class RayWorkers(Admission):
    """The ingress's workers: admission here, computing on the EdgeModel replicas."""

    def __init__(self, model: Any, workers: int, max_queue: int):
        super().__init__(workers, max_queue)
        self.model = model  # DeploymentHandle

    async def run(self, job: Callable[..., T], *args: Any) -> T:
        try:
            return await self.model.run.remote(job, *args)
        except _REPLICA_GONE as err:
            raise ServerUnavailable(f"the replica computing this request went away ({type(err).__name__}); "
                                    "retry in a moment, another replica answers") from None


class EdgeIngress:
    def __init__(self, options: ClusterOptions, model: Any):
        self.options, self.model = options, model

    def __serve_build_asgi_app__(self) -> Any:  # Ray Serve calls this in the replica
        limits = self.options.limits
        return create_app(None, limits, visualize=self.options.visualize,
                          workers=RayWorkers(self.model, limits.workers, limits.max_queue))


def application(options: ClusterOptions) -> Any:
    """The Ray Serve application (bound deployments) for these options."""
    model = serve.deployment(EdgeModel, name="EdgeModel", **options.model_deployment())
    ingress = serve.deployment(serve.ingress()(EdgeIngress), name="EdgeIngress", **options.ingress_deployment())
    return ingress.bind(options, model.bind(options.pipeline, options.overrides))


def build_app(args: Dict[str, Any]) -> Any:
    """Ray Serve's application builder (`import_path: edge.serve.ray_app:build_app`, `args: {...}`)."""
    return application(ClusterOptions.from_args(args or {}))


def run_on_ray(options: ClusterOptions, address: Optional[str], host: str, port: int) -> None:
    """Deploy on the cluster at `address` (None: a local Ray started here) and serve until SIGINT / SIGTERM.

    Then the app is deleted (replicas finish their requests, up to graceful_timeout); Serve
    itself is shut down only if this process started it, and a local Ray only if started here.
    """
    from ray.serve._private.constants import SERVE_CONTROLLER_NAME, SERVE_NAMESPACE

    stop = threading.Event()
    if not address:  # a Ray started here: give Serve's HTTP proxy time to start on a busy machine (default 5 s)
        os.environ.setdefault("RAY_SERVE_PROXY_READY_CHECK_TIMEOUT_S", "30")
    ray.init(address=address, logging_level=logging.WARNING, log_to_driver=False,
             **({} if address else {"include_dashboard": False}))
    # after ray.init, whose core worker installs a handler that dies on SIGTERM at once
    previous = {sig: signal.signal(sig, lambda *_: stop.set()) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        try:
            ray.get_actor(SERVE_CONTROLLER_NAME, namespace=SERVE_NAMESPACE)
            serve_was_running = True
        except ValueError:
            serve_was_running = False
        _start_serve(host, port)
        serve.run(application(options), name=APP_NAME, route_prefix="/", blocking=False)
        replicas = f"{options.autoscale[0]}-{options.autoscale[1]} (autoscaled)" if options.autoscale else options.replicas
        print(f"edge serve --ray: http://{host}:{port} (docs at /docs); {replicas} model replica(s), "
              f"queue {options.limits.max_queue}", flush=True)
        while not stop.wait(0.5):
            pass
        logger.info("stopping: deleting the application (requests in flight finish first)")
        serve.delete(APP_NAME)
        if not serve_was_running:
            serve.shutdown()
            _wait_until_gone(SERVE_NAMESPACE)
    finally:
        ray.shutdown()
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _wait_until_gone(namespace: str, timeout_s: float = 60.0) -> None:
    """Serve's controller and proxies end after `serve.shutdown()` returns; a Serve started on the
    same cluster before they are gone loses its proxy (its name is still taken), so wait for them."""
    deadline = time.monotonic() + timeout_s
    while any(actor["namespace"] == namespace for actor in ray.util.list_named_actors(all_namespaces=True)):
        if time.monotonic() > deadline:
            logger.warning("Serve's actors were still there %g s after shutdown", timeout_s)
            return
        time.sleep(0.5)


def _start_serve(host: str, port: int, attempts: int = 3) -> None:
    """`serve.start`, again if its HTTP proxy was killed before it was ready: Serve's controller does
    that to a proxy slower to start than its ready-check timeout (a loaded machine), then starts
    another with a longer one; the options given first stay."""
    for attempt in range(1, attempts + 1):
        try:
            serve.start(proxy_location="HeadOnly", http_options={"host": host, "port": port})
            return
        except RayActorError as err:
            if attempt == attempts:
                raise
            logger.warning("Serve's HTTP proxy was not ready (%s); trying again", type(err).__name__)
