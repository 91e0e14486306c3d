"""The FastAPI app: PaddleX's `POST /instance-segmentation` and `GET /health`, exactly.

Envelope: `{logId (uuid4), errorCode, errorMsg[, result]}`; `errorCode` is 0 on success and the
HTTP status otherwise. Statuses (documented in the README):

* 200 success; `result.image` is left out when the answer is not visualised;
* 400 the image cannot be used: bad Base64, not an image, a format that is not accepted,
  truncated or damaged file, zero size, more pixels than allowed, malformed URL, URL with a scheme
  other than http/https, URL that cannot be fetched (closed port, past the deadline, too large,
  non-public address while those are refused);
* 413 request body larger than allowed; 422 request validation (a body that is not JSON, whatever
  its Content-Type, missing `image`, `threshold` outside (0, 1)), `errorMsg` = JSON list of
  `{type, loc, msg}`;
* 408 the request head or body did not arrive within `body_timeout` (the connection is closed);
* 503 queue full, or too many bodies in memory, or (`edge serve --ray`) the replica computing the
  request went away (with `Retry-After`); 404 / 405 for other paths and methods;
* 500 "Internal server error" for anything else (logged with the logId).
"""
from __future__ import annotations

import asyncio
import json
import logging
import re
import uuid
from contextlib import asynccontextmanager
from typing import Any, Callable, Dict, Optional, Tuple

import numpy as np
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException

from ..errors import InputError
from ..fetch import fetch_url
from ..inputs import read_image_bytes
from .codec import HEALTH_PATH, INFER_PATH, decode_base64, encode_instances, encode_jpeg_base64
from .gate import RETRY_AFTER_S, RequestGate, envelope
from .limits import ServeLimits
from .schemas import InferRequest, InferResponse, NoResultResponse
from .worker import Admission, InferenceWorkers, ServerUnavailable

logger = logging.getLogger(__name__)

_URL_LIKE = re.compile(r"^[A-Za-z][A-Za-z0-9+.\-]*://")
SEND_JSON_OBJECT = '; send a JSON object such as {"image": "<Base64 of the file, or an http(s) URL>"}'
_NOT_AN_OBJECT = {"json_invalid", "model_attributes_type", "dict_type"}


def _log_id(request: Request) -> str:
    return getattr(request.state, "log_id", None) or str(uuid.uuid4())


def read_request_file(image: str, limits: ServeLimits) -> Tuple[bytes, str]:
    """The `image` field (http(s) URL or Base64) as the image file's bytes, and a name for messages."""
    if _URL_LIKE.match(image):
        return fetch_url(image, timeout=limits.url_timeout, max_bytes=limits.url_max_bytes,
                         allow_private=limits.allow_private_urls), image
    source = "image (Base64)"
    return decode_base64(image, source), source


def _infer(pipeline: Any, image: np.ndarray, threshold: Optional[float], visualize: bool) -> Dict[str, Any]:
    """Runs on a worker thread: inference, RLE encoding and the picture, all off the event loop."""
    result = next(iter(pipeline.predict(image, threshold=threshold)))
    answer: Dict[str, Any] = {"instances": encode_instances(result["boxes"], result["masks"])}
    if visualize:
        answer["image"] = encode_jpeg_base64(result.img["res"])
    return answer


def create_app(make_pipeline: Optional[Callable[[], Any]], limits: ServeLimits = ServeLimits(), visualize: bool = True,
               title: str = "PaddleX-compatible instance segmentation", workers: Optional[Admission] = None) -> FastAPI:
    """`make_pipeline()` is called `limits.workers` times now: one pipeline (model copy) per worker.

    `workers` replaces those threads with another way of computing (Ray Serve replicas: ray_app.py);
    then `make_pipeline` is not used.
    """
    if workers is None:
        workers = InferenceWorkers([make_pipeline() for _ in range(limits.workers)], limits.max_queue)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        yield
        workers.shutdown()  # after uvicorn has drained the requests in flight

    app = FastAPI(title=title, lifespan=lifespan,
                  description="PaddleX's general instance segmentation serving API (`POST /instance-segmentation`).")
    app.state.workers = workers
    app.state.limits = limits
    app.add_middleware(RequestGate, limits=limits, workers=workers)
    decode_slots = asyncio.Semaphore(limits.decode_slots)

    @app.get(HEALTH_PATH, operation_id="checkHealth", response_model=NoResultResponse)
    async def check_health(request: Request):
        return envelope(_log_id(request), 200, "Healthy")

    @app.post(INFER_PATH, operation_id="infer", response_model=InferResponse, response_model_exclude_none=True,
              responses={code: {"model": NoResultResponse} for code in (400, 408, 413, 422, 500, 503)})
    async def infer(body: InferRequest, request: Request):
        log_id = _log_id(request)
        show = visualize if body.visualize is None else body.visualize
        try:  # RequestGate holds this request's place in the queue
            data, source = await run_in_threadpool(read_request_file, body.image, limits)
            async with decode_slots:  # the decoded image is held until its answer is built
                image = await run_in_threadpool(read_image_bytes, data, source, max_pixels=limits.max_pixels)
                del data
                result = await workers.run(_infer, image, body.threshold, show)
        except InputError as err:
            logger.info("%s: bad input: %s", log_id, err)
            return envelope(log_id, 400, str(err))
        except ServerUnavailable as err:
            logger.warning("%s: %s", log_id, err)
            return envelope(log_id, 503, str(err), headers={"Retry-After": RETRY_AFTER_S})
        return envelope(log_id, 200, "Success", result)

    @app.exception_handler(RequestValidationError)
    async def on_validation_error(request: Request, exc: RequestValidationError):
        # {type, loc, msg} only: PaddleX also echoes `input`, which can be the whole Base64 image
        errors = [{"type": e.get("type"), "loc": list(e.get("loc", ())),
                   "msg": e.get("msg") + (SEND_JSON_OBJECT if e.get("type") in _NOT_AN_OBJECT else "")}
                  for e in exc.errors()]
        return envelope(_log_id(request), 422, json.dumps(errors))

    @app.exception_handler(HTTPException)
    async def on_http_error(request: Request, exc: HTTPException):
        if isinstance(exc.__cause__, (RecursionError, ValueError)) and request.url.path == INFER_PATH:
            # FastAPI's "error parsing the body": JSON nested too deeply, or bytes that are not text
            errors = [{"type": "json_invalid", "loc": ["body"], "msg": f"JSON decode error ({type(exc.__cause__).__name__})"
                       + SEND_JSON_OBJECT}]
            return envelope(_log_id(request), 422, json.dumps(errors))
        return envelope(_log_id(request), exc.status_code, str(exc.detail), headers=getattr(exc, "headers", None))

    @app.exception_handler(Exception)
    async def on_unexpected_error(request: Request, exc: Exception):
        logger.error("%s: %s %s failed", _log_id(request), request.method, request.url.path, exc_info=exc)
        return envelope(_log_id(request), 500, "Internal server error")

    return app
