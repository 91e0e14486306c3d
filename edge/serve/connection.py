"""uvicorn's h11 connection with a deadline on every request head.

uvicorn times out a keep-alive connection only while it is completely idle, and a new connection
not at all: a client that sends half a request line, or one header byte now and then, holds its
connection (a file descriptor, a buffer) forever. Here a request head must be complete within
``head_timeout`` seconds of the connection opening or of the previous answer; otherwise the
client gets 408 (or, if it sent nothing, just the close).
"""
from __future__ import annotations

import asyncio
import json
import logging
import uuid
from typing import Optional

from uvicorn.protocols.http.h11_impl import H11Protocol

logger = logging.getLogger(__name__)


def head_deadline_protocol(head_timeout: float) -> type:
    """The protocol class uvicorn builds for each connection, with this deadline."""
    return type("HeadDeadlineProtocol", (HeadDeadlineProtocol,), {"head_timeout": float(head_timeout)})


class HeadDeadlineProtocol(H11Protocol):
    head_timeout: float = 30.0
    _head_timer: Optional[asyncio.TimerHandle] = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm_head_deadline()

    def connection_lost(self, exc: Optional[Exception]) -> None:
        self._disarm_head_deadline()
        super().connection_lost(exc)

    def handle_events(self) -> None:
        cycle = self.cycle
        super().handle_events()
        if self.cycle is not cycle:  # a complete request head arrived
            self._disarm_head_deadline()

    def on_response_complete(self) -> None:
        self._arm_head_deadline()  # for the next request on this connection (a pipelined one disarms it)
        super().on_response_complete()

    def _arm_head_deadline(self) -> None:
        self._disarm_head_deadline()
        self._head_timer = self.loop.call_later(self.head_timeout, self._head_deadline_passed)

    def _disarm_head_deadline(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _head_deadline_passed(self) -> None:
        self._head_timer = None
        if self.transport.is_closing():
            return
        partial, _ = self.conn.trailing_data
        if partial:  # part of a request head: say why the connection ends
            logger.info("%s: request head not complete within %g s; closing", self.client, self.head_timeout)
            body = json.dumps({"logId": str(uuid.uuid4()), "errorCode": 408,
                               "errorMsg": f"the request head did not arrive within {self.head_timeout:g} s"}).encode()
            self.transport.write(b"HTTP/1.1 408 Request Timeout\r\ncontent-type: application/json\r\n"
                                 b"connection: close\r\ncontent-length: %d\r\n\r\n%s" % (len(body), body))
        self.transport.close()
