"""Inference off the event loop: a fixed set of pipelines, one thread each, behind a bounded queue.

A Paddle / Paddle Lite predictor must not run two images at once, so each worker thread owns one
pipeline (one copy of the model). Admission is counted from the moment a request is accepted
until its answer is built; when ``workers + max_queue`` requests are already admitted, the next
one is refused at once (``ServerBusy`` -> 503) rather than waiting without bound.

`Admission` is that count alone: `edge serve --ray` (ray_app.py) admits the same way and computes
on Ray Serve replicas instead of threads.
"""
from __future__ import annotations

import asyncio
import contextlib
import logging
import queue
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable, Iterator, Sequence, TypeVar

from ..errors import ConfigError, ServerError

logger = logging.getLogger(__name__)
T = TypeVar("T")


class ServerBusy(ServerError):
    def __init__(self, capacity: int):
        self.capacity = capacity
        super().__init__(
            f"the server is busy: {capacity} requests are already being served or queued; retry in a moment"
        )


class ServerUnavailable(ServerError):
    """The computing side went away mid-request (e.g. a Ray replica died): retry, another one answers."""


class Admission:
    """Requests admitted at once: `workers` being computed plus `max_queue` waiting."""

    def __init__(self, workers: int, max_queue: int):
        self.workers = workers
        self.capacity = workers + max_queue
        self._admitted = 0
        self._lock = threading.Lock()

    @property
    def admitted(self) -> int:
        return self._admitted

    @contextlib.contextmanager
    def admit(self) -> Iterator[None]:
        """Hold one place in the queue for the duration of a request, or raise ServerBusy."""
        with self._lock:
            if self._admitted >= self.capacity:
                raise ServerBusy(self.capacity)
            self._admitted += 1
        try:
            yield
        finally:
            with self._lock:
                self._admitted -= 1

    async def run(self, job: Callable[..., T], *args: Any) -> T:
        """`job(pipeline, *args)` with a pipeline of its own; `ServerUnavailable` if that side went away."""
        raise NotImplementedError

    def shutdown(self) -> None:
        """Let running jobs finish."""


class InferenceWorkers(Admission):
    def __init__(self, pipelines: Sequence[Any], max_queue: int):
        if not pipelines:
            raise ConfigError("at least one pipeline is needed")
        super().__init__(len(pipelines), max_queue)
        self._idle: "queue.SimpleQueue[Any]" = queue.SimpleQueue()
        for pipeline in pipelines:
            self._idle.put(pipeline)
        self._executor = ThreadPoolExecutor(max_workers=self.workers, thread_name_prefix="edge-infer")

    async def run(self, job: Callable[..., T], *args: Any) -> T:
        """`job(pipeline, *args)` on a worker thread with a pipeline of its own."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, self._with_pipeline, job, args)

    def _with_pipeline(self, job: Callable[..., T], args: tuple) -> T:
        pipeline = self._idle.get()
        try:
            return job(pipeline, *args)
        finally:
            self._idle.put(pipeline)

    def shutdown(self) -> None:
        """Let running jobs finish, then stop the threads."""
        self._executor.shutdown(wait=True)
