"""The server's resource limits, in one place (CLI flags map one to one onto these fields)."""
from __future__ import annotations

from dataclasses import dataclass

from ..errors import ConfigError

MiB = 2**20


@dataclass(frozen=True)
class ServeLimits:
    """Defaults are safe for a server that faces a network.

    * ``max_body_bytes``: request bodies above this get 413 before they are read (Base64 makes a
      file about 4/3 larger, so 20 MiB carries a ~15 MiB image file).
    * ``max_pixels``: decoded images above this many pixels get 400 (checked on the file header,
      before decoding, so a 20000x20000 "decompression bomb" costs nothing).
    * ``url_timeout`` / ``url_max_bytes``: for ``image`` given as an http(s) URL.
    * ``allow_private_urls``: False refuses URLs whose host resolves to loopback, private,
      link-local or other non-public addresses (server-side request forgery); turn it on only for
      a server on a trusted network (and in tests on 127.0.0.1).
    * ``workers``: inference threads, each with its own copy of the model.
    * ``max_queue``: requests allowed to wait beyond the ``workers`` being served; one more gets
      503 at once (with ``Retry-After``), instead of piling up memory and latency.
    * ``graceful_timeout``: seconds that shutdown waits for requests in flight.
    """

    max_body_bytes: int = 20 * MiB
    max_pixels: int = 40_000_000
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
        if self.max_queue < 0:
            raise ConfigError(f"serve limit max_queue must be 0 or more, got {self.max_queue!r}")
        if self.url_timeout <= 0 or self.graceful_timeout < 0:
            raise ConfigError("url_timeout must be > 0 and graceful_timeout >= 0 seconds")

    @property
    def capacity(self) -> int:
        """Requests admitted at once (being served or waiting)."""
        return self.workers + self.max_queue
