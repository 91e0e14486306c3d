"""The server's resource limits, in one place (CLI flags map one to one onto these fields)."""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional

from ..errors import ConfigError

MiB = 2**20


@dataclass(frozen=True)
class ServeLimits:
    """Defaults are safe for a server that faces a network.

    * ``max_body_bytes``: request bodies above this get 413 before they are read (Base64 makes a
      file about 4/3 larger, so 20 MiB carries a ~15 MiB image file).
    * ``body_timeout``: seconds a client has to send a request's head, and then its body; slower
      clients get 408 and their connection is closed (a slow upload holds no queue place).
    * ``max_pixels``: decoded images above this many pixels get 400 (checked on the file header,
      before decoding, so a 20000x20000 "decompression bomb" costs nothing).
    * ``max_decodes``: images decoded and held in memory at once (decoding until the answer is
      built); the peak memory of the server grows with ``max_decodes x max_pixels``. Default:
      ``workers + 1``, so the next image is decoded while one is computed.
    * ``url_timeout`` / ``url_max_bytes``: for ``image`` given as an http(s) URL; the timeout is
      a total deadline (connect, redirects and body).
    * ``allow_private_urls``: False refuses URLs whose host resolves to loopback, private,
      link-local or other non-public addresses (server-side request forgery); turn it on only for
      a server on a trusted network (and in tests on 127.0.0.1).
    * ``workers``: inference threads, each with its own copy of the model.
    * ``max_queue``: requests allowed to wait beyond the ``workers`` being served; one more gets
      503 at once (with ``Retry-After``), instead of piling up memory and latency.
    * ``graceful_timeout``: seconds that shutdown waits for requests in flight.
    """

    max_body_bytes: int = 20 * MiB
    body_timeout: float = 30.0
    max_pixels: int = 40_000_000
    max_decodes: Optional[int] = None
    url_timeout: float = 10.0
    url_max_bytes: int = 20 * MiB
    allow_private_urls: bool = False
    workers: int = 1
    max_queue: int = 16
    graceful_timeout: float = 30.0

    def __post_init__(self) -> None:
        for name in ("max_body_bytes", "max_pixels", "url_max_bytes", "workers"):
            if int(getattr(self, name)) < 1:
                raise ConfigError(f"serve limit {name} must be at least 1, got {getattr(self, name)!r}")
        if self.max_decodes is not None and self.max_decodes < 1:
            raise ConfigError(f"serve limit max_decodes must be at least 1, got {self.max_decodes!r}")
        if self.max_queue < 0:
            raise ConfigError(f"serve limit max_queue must be 0 or more, got {self.max_queue!r}")
        for name in ("body_timeout", "url_timeout"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value > 0):
                raise ConfigError(f"serve limit {name} must be a number of seconds > 0, got {value!r}")
        if not (math.isfinite(self.graceful_timeout) and self.graceful_timeout >= 0):
            raise ConfigError(f"serve limit graceful_timeout must be a number of seconds >= 0, got {self.graceful_timeout!r}")

    @property
    def capacity(self) -> int:
        """Requests admitted at once (being served or waiting)."""
        return self.workers + self.max_queue

    @property
    def decode_slots(self) -> int:
        """Images decoded and held at once."""
        return self.max_decodes if self.max_decodes is not None else self.workers + 1

    @property
    def body_budget_bytes(self) -> int:
        """Request bodies held in memory at once, read or being read: as many as the queue admits."""
        return self.capacity * self.max_body_bytes
