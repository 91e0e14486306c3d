"""The ASGI gate in front of the app: a logId per request, the body's size, deadline and memory, the queue.

For `POST /instance-segmentation`:

* a declared Content-Length over the limit is refused (413) before the body is read; a chunked
  body is counted as it arrives and refused when it passes the limit;
* the whole body is read *before* the request takes a place in the queue, within
  ``body_timeout`` seconds (else 408 and the connection is closed), so slow uploads hold
  nothing but their connection and the bytes they sent;
* bodies held in memory (being read, or admitted) share a byte budget of ``capacity x
  max_body_bytes``: a flood of uploads on many connections gets 503 rather than memory;
* then the request takes a place in the bounded queue, or gets 503 at once when it is full.

Any body is read as JSON whatever its Content-Type says (common clients label a JSON string
`text/plain` or `application/x-www-form-urlencoded`); the app decides whether it is JSON.
"""
from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from typing import Any, Callable, Dict, Iterator, List, Optional

from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from .limits import ServeLimits
from .worker import Admission, ServerBusy

logger = logging.getLogger(__name__)

from .codec import INFER_PATH
RETRY_AFTER_S = "1"


def envelope(log_id: str, status: int, message: str, result: Optional[Dict[str, Any]] = None,
             headers: Optional[Dict[str, str]] = None) -> JSONResponse:
    body: Dict[str, Any] = {"logId": log_id, "errorCode": 0 if status == 200 else status, "errorMsg": message}
    if result is not None:
        body["result"] = result
    return JSONResponse(body, status_code=status, headers=headers)


class _Refused(Exception):
    """The body cannot be taken: answer `status` with `message` and close the connection."""

    def __init__(self, status: int, message: str):
        self.status, self.message = status, message
        super().__init__(message)


class _Disconnected(Exception):
    pass


class BodyBudget:
    """Bytes of request bodies held in memory at once, across requests (event-loop thread only)."""

    def __init__(self, limit: int):
        self.limit = limit
        self.used = 0

    @contextlib.contextmanager
    def account(self) -> Iterator[Callable[[int], bool]]:
        """`take(size) -> bool` for one request; what it took is given back when the block ends."""
        held = 0

        def take(size: int) -> bool:
            nonlocal held
            if self.used + size > self.limit:
                return False
            self.used += size
            held += size
            return True

        try:
            yield take
        finally:
            self.used -= held


class RequestGate:
    def __init__(self, app: Any, limits: ServeLimits, workers: Admission):
        self.app = app
        self.limits = limits
        self.workers = workers
        self.budget = BodyBudget(limits.body_budget_bytes)

    def _too_large(self) -> str:
        return (f"the request body is larger than {self.limits.max_body_bytes} bytes; "
                "send a smaller image or an http(s) URL")

    async def __call__(self, scope: Dict[str, Any], receive: Callable, send: Callable) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        log_id = str(uuid.uuid4())
        scope.setdefault("state", {})["log_id"] = log_id
        declared = dict(scope.get("headers") or []).get(b"content-length", b"")
        if declared.isdigit() and int(declared) > self.limits.max_body_bytes:
            await self._refuse(log_id, 413, self._too_large(), scope, receive, send)
            return
        if scope.get("method") != "POST" or scope.get("path") != INFER_PATH:
            await self.app(scope, self._counted(receive), send)
            return
        with self.budget.account() as take:  # the body stays counted until the answer is sent
            try:
                body = await asyncio.wait_for(self._read_body(receive, take), self.limits.body_timeout)
            except asyncio.TimeoutError:
                logger.info("%s: body not received within %g s", log_id, self.limits.body_timeout)
                await self._refuse(log_id, 408, f"the request body did not arrive within {self.limits.body_timeout:g} s; "
                                   "send the whole request at once", scope, receive, send)
                return
            except _Refused as refused:
                logger.warning("%s: refused, %s", log_id, refused.message)
                await self._refuse(log_id, refused.status, refused.message, scope, receive, send)
                return
            except _Disconnected:
                return
            await self._admit(log_id, self._as_json(scope), self._replay(body, receive), send)

    async def _admit(self, log_id: str, scope: Dict[str, Any], receive: Callable, send: Callable) -> None:
        try:
            with self.workers.admit():
                await self.app(scope, receive, send)
        except ServerBusy as busy:
            logger.warning("%s: refused, %s", log_id, busy)
            await self._refuse(log_id, 503, str(busy), scope, receive, send)

    async def _read_body(self, receive: Callable, take: Callable[[int], bool]) -> bytes:
        chunks: List[bytes] = []
        received = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                raise _Disconnected()
            chunk = message.get("body", b"")
            received += len(chunk)
            if received > self.limits.max_body_bytes:
                raise _Refused(413, self._too_large())
            if not take(len(chunk)):
                raise _Refused(503, "the server is busy: too many request bodies are being received; retry in a moment")
            chunks.append(chunk)
            if not message.get("more_body", False):
                return b"".join(chunks)

    def _counted(self, receive: Callable) -> Callable:
        """`receive` that refuses (413) a chunked body once it passes the limit."""
        received = 0

        async def counted_receive() -> Dict[str, Any]:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.limits.max_body_bytes:
                    raise HTTPException(413, self._too_large())
            return message

        return counted_receive

    @staticmethod
    def _replay(body: bytes, receive: Callable) -> Callable:
        """`receive` that gives the body read ahead in one message, then waits for the disconnect."""
        pending = [body]

        async def replay_receive() -> Dict[str, Any]:
            if pending:
                return {"type": "http.request", "body": pending.pop(), "more_body": False}
            return await receive()

        return replay_receive

    @staticmethod
    def _as_json(scope: Dict[str, Any]) -> Dict[str, Any]:
        headers = [(k, v) for k, v in scope.get("headers") or [] if k != b"content-type"]
        return {**scope, "headers": headers + [(b"content-type", b"application/json")]}

    @staticmethod
    async def _refuse(log_id: str, status: int, message: str, scope: Dict[str, Any], receive: Callable,
                      send: Callable) -> None:
        headers = {"Connection": "close"}
        if status == 503:
            headers["Retry-After"] = RETRY_AFTER_S
        await envelope(log_id, status, message, headers=headers)(scope, receive, send)
