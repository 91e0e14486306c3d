"""The FastAPI app: PaddleX's `POST /instance-segmentation` and `GET /health`, exactly.

Envelope: `{logId (uuid4), errorCode, errorMsg[, result]}`; `errorCode` is 0 on success and the
HTTP status otherwise. Statuses (documented in the README):

* 200 success; `result.image` is left out when the answer is not visualised;
* 400 the image cannot be used: bad Base64, not an image, truncated or damaged file, zero size,
  more pixels than allowed, URL with a scheme other than http/https, URL that cannot be fetched
  (closed port, timeout, too large, non-public address while those are refused);
* 413 request body larger than allowed; 422 request validation (invalid JSON, missing `image`,
  `threshold` outside (0, 1)), `errorMsg` = JSON list of `{type, loc, msg}`;
* 503 queue full (with `Retry-After`); 404 / 405 for other paths and methods;
* 500 "Internal server error" for anything else (logged with the logId).
"""
from __future__ import annotations

import json
import logging
import re
import uuid
from contextlib import asynccontextmanager
from typing import Any, Callable, Dict, Optional

import numpy as np
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException

from ..errors import InputError
from ..inputs import fetch_url, read_image_bytes
from .codec import HEALTH_PATH, INFER_PATH, decode_base64, encode_instances, encode_jpeg_base64
from .limits import ServeLimits
from .schemas import InferRequest, InferResponse, NoResultResponse
from .worker import InferenceWorkers, ServerBusy

logger = logging.getLogger(__name__)

_URL_LIKE = re.compile(r"^[A-Za-z][A-Za-z0-9+.\-]*://")


def envelope(log_id: str, status: int, message: str, result: Optional[Dict[str, Any]] = None,
             headers: Optional[Dict[str, str]] = None) -> JSONResponse:
    body: Dict[str, Any] = {"logId": log_id, "errorCode": 0 if status == 200 else status, "errorMsg": message}
    if result is not None:
        body["result"] = result
    return JSONResponse(body, status_code=status, headers=headers)


def _log_id(request: Request) -> str:
    return getattr(request.state, "log_id", None) or str(uuid.uuid4())


class RequestGate:
    """ASGI middleware in front of everything: a logId per request, the body limit, the queue.

    * A declared Content-Length over `max_bytes` is refused (413) before the body is read; a
      chunked body is counted as it arrives and refused when it passes the limit.
    * `POST /instance-segmentation` takes a place in the bounded queue *before* its body is read,
      so a burst of large requests cannot pile up in memory: when full, 503 at once.
    """

    def __init__(self, app: Any, max_bytes: int, workers: InferenceWorkers):
        self.app = app
        self.max_bytes = max_bytes
        self.workers = workers

    def _too_large(self) -> str:
        return f"the request body is larger than {self.max_bytes} bytes; send a smaller image or an http(s) URL"

    async def __call__(self, scope: Dict[str, Any], receive: Callable, send: Callable) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        log_id = str(uuid.uuid4())
        scope.setdefault("state", {})["log_id"] = log_id
        declared = dict(scope.get("headers") or []).get(b"content-length", b"")
        if declared.isdigit() and int(declared) > self.max_bytes:
            await envelope(log_id, 413, self._too_large(), headers={"Connection": "close"})(scope, receive, send)
            return
        received = 0

        async def counted_receive() -> Dict[str, Any]:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise HTTPException(413, self._too_large())
            return message

        if scope.get("method") != "POST" or scope.get("path") != INFER_PATH:
            await self.app(scope, counted_receive, send)
            return
        try:
            with self.workers.admit():
                await self.app(scope, counted_receive, send)
        except ServerBusy as busy:
            logger.warning("%s: refused, %s", log_id, busy)
            response = envelope(log_id, 503, str(busy), headers={"Retry-After": "1", "Connection": "close"})
            await response(scope, receive, send)


def read_request_image(image: str, limits: ServeLimits) -> np.ndarray:
    """The `image` field (http(s) URL or Base64) as a BGR array, within the limits."""
    if _URL_LIKE.match(image):
        data = fetch_url(image, timeout=limits.url_timeout, max_bytes=limits.url_max_bytes,
                         allow_private=limits.allow_private_urls)
        source = image
    else:
        source = "image (Base64)"
        data = decode_base64(image, source)
    return read_image_bytes(data, source, max_pixels=limits.max_pixels)


def _infer(pipeline: Any, image: np.ndarray, threshold: Optional[float], visualize: bool) -> Dict[str, Any]:
    """Runs on a worker thread: inference, RLE encoding and the picture, all off the event loop."""
    result = next(iter(pipeline.predict(image, threshold=threshold)))
    answer: Dict[str, Any] = {"instances": encode_instances(result["boxes"], result["masks"])}
    if visualize:
        answer["image"] = encode_jpeg_base64(result.img["res"])
    return answer


def create_app(make_pipeline: Callable[[], Any], limits: ServeLimits = ServeLimits(), visualize: bool = True,
               title: str = "PaddleX-compatible instance segmentation") -> FastAPI:
    """`make_pipeline()` is called `limits.workers` times now: one pipeline (model copy) per worker."""
    workers = InferenceWorkers([make_pipeline() for _ in range(limits.workers)], limits.max_queue)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        yield
        workers.shutdown()  # after uvicorn has drained the requests in flight

    app = FastAPI(title=title, lifespan=lifespan,
                  description="PaddleX's general instance segmentation serving API (`POST /instance-segmentation`).")
    app.state.workers = workers
    app.state.limits = limits
    app.add_middleware(RequestGate, max_bytes=limits.max_body_bytes, workers=workers)

    @app.get(HEALTH_PATH, operation_id="checkHealth", response_model=NoResultResponse)
    async def check_health(request: Request):
        return envelope(_log_id(request), 200, "Healthy")

    @app.post(INFER_PATH, operation_id="infer", response_model=InferResponse, response_model_exclude_none=True,
              responses={code: {"model": NoResultResponse} for code in (400, 413, 422, 500, 503)})
    async def infer(body: InferRequest, request: Request):
        log_id = _log_id(request)
        try:  # RequestGate holds this request's place in the queue
            image = await run_in_threadpool(read_request_image, body.image, limits)
            show = visualize if body.visualize is None else body.visualize
            result = await workers.run(_infer, image, body.threshold, show)
        except InputError as err:
            logger.info("%s: bad input: %s", log_id, err)
            return envelope(log_id, 400, str(err))
        return envelope(log_id, 200, "Success", result)

    @app.exception_handler(RequestValidationError)
    async def on_validation_error(request: Request, exc: RequestValidationError):
        # {type, loc, msg} only: PaddleX also echoes `input`, which can be the whole Base64 image
        errors = [{"type": e.get("type"), "loc": list(e.get("loc", ())), "msg": e.get("msg")} for e in exc.errors()]
        return envelope(_log_id(request), 422, json.dumps(errors))

    @app.exception_handler(HTTPException)
    async def on_http_error(request: Request, exc: HTTPException):
        return envelope(_log_id(request), exc.status_code, str(exc.detail), headers=getattr(exc, "headers", None))

    @app.exception_handler(Exception)
    async def on_unexpected_error(request: Request, exc: Exception):
        logger.error("%s: %s %s failed", _log_id(request), request.method, request.url.path, exc_info=exc)
        return envelope(_log_id(request), 500, "Internal server error")

    return app
