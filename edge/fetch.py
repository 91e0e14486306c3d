"""Fetching an image or PDF given as an http(s) URL: a total deadline, a size cap, public hosts only.

* The URL is checked before anything is sent: scheme http/https, a host, a port in range, host
  labels of at most 63 characters. A malformed URL (or redirect ``Location``) is an InputError.
* ``timeout`` is a total deadline for connecting, every redirect and the whole body: a watchdog
  shuts the connection's socket down when it passes, whatever the fetch is blocked in (an
  origin that trickles one byte a second cannot stretch it). Name resolution is the resolver's.
* With ``allow_private=False`` (the HTTP server's default) every hop must resolve to public
  addresses only; an IPv6 address that embeds an IPv4 one (IPv4-mapped, IPv4-compatible, NAT64,
  6to4, Teredo) is judged by the IPv4 address too.
"""
from __future__ import annotations

import ipaddress
import socket
import threading
import time
from typing import Any, List, Optional, Union
from urllib.parse import SplitResult, urljoin, urlsplit

from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

from .errors import InputError

MAX_REDIRECTS = 5
IPAddress = Union[ipaddress.IPv4Address, ipaddress.IPv6Address]

_NAT64 = ipaddress.ip_network("64:ff9b::/96")  # RFC 6052, IPv4 in the last 32 bits
_NAT64_LOCAL = ipaddress.ip_network("64:ff9b:1::/48")  # RFC 8215, local use: never public
_IPV4_COMPATIBLE = ipaddress.ip_network("::/96")  # deprecated ::a.b.c.d


def check_url(url: str) -> SplitResult:
    """The parts of an http(s) URL that can be fetched, or an InputError that says what is wrong."""
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 (raises ValueError for a port out of range or not a number)
    except ValueError as err:
        raise InputError(url, f"the URL is malformed ({err})") from None
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https"):
        raise InputError(url, f"URL scheme {scheme!r} is not allowed; only http:// and https:// URLs are fetched")
    host = parts.hostname
    if not host:
        raise InputError(url, "the URL has no host name")
    if not _is_ip_literal(host):
        try:
            ascii_host = host.encode("idna").decode("ascii")
        except UnicodeError as err:
            raise InputError(url, f"the host name {host!r} is not valid ({err})") from None
        if len(ascii_host) > 253 or any(not 0 < len(label) <= 63 for label in ascii_host.rstrip(".").split(".")):
            raise InputError(url, "the host name is not valid (labels of 1 to 63 characters, 253 in all)")
    return parts


def _is_ip_literal(host: str) -> bool:
    try:
        ipaddress.ip_address(host.split("%")[0])
        return True
    except ValueError:
        return False


def is_public_address(address: IPAddress) -> bool:
    """Global unicast, and so is every IPv4 address it embeds."""
    if not address.is_global or address.is_multicast:
        return False
    if isinstance(address, ipaddress.IPv4Address):
        return True
    if address in _NAT64_LOCAL:
        return False
    return all(is_public_address(v4) for v4 in _embedded_ipv4(address))


def _embedded_ipv4(address: ipaddress.IPv6Address) -> List[ipaddress.IPv4Address]:
    embedded = [a for a in (address.ipv4_mapped, address.sixtofour) if a is not None]
    if address.teredo:
        embedded += list(address.teredo)  # (server, client)
    if address in _NAT64 or address in _IPV4_COMPATIBLE:
        embedded.append(ipaddress.IPv4Address(int(address) & 0xFFFFFFFF))
    return embedded


def check_public_host(url: str) -> None:
    """Refuse hosts that resolve to loopback, private, link-local or otherwise non-public addresses."""
    parts = check_url(url)
    port = parts.port or (443 if parts.scheme.lower() == "https" else 80)
    try:
        infos = socket.getaddrinfo(parts.hostname, port, proto=socket.IPPROTO_TCP)
    except (socket.gaierror, UnicodeError) as err:
        raise InputError(url, f"the host name cannot be resolved ({err})") from None
    for info in infos:
        address = ipaddress.ip_address(info[4][0].split("%")[0])
        if not is_public_address(address):
            shown = address.ipv4_mapped if getattr(address, "ipv4_mapped", None) else address
            raise InputError(url, f"the host resolves to a non-public address ({shown}); such URLs are refused here")


# ---------------------------------------------------------------------------------------------
# the deadline


class _Deadline:
    """Shuts down the sockets of one fetch when its time is up, whatever they are blocked in."""

    def __init__(self, seconds: float):
        self.seconds = seconds
        self.expires = time.monotonic() + seconds
        self.expired = False
        self._sockets: List[socket.socket] = []
        self._lock = threading.Lock()
        self._timer = threading.Timer(seconds, self._expire)
        self._timer.daemon = True

    def remaining(self) -> float:
        return max(self.expires - time.monotonic(), 0.001)

    def watch(self, sock: Optional[socket.socket]) -> None:
        with self._lock:
            if sock is not None:
                self._sockets.append(sock)
            if self.expired:
                _shutdown(sock)

    def _expire(self) -> None:
        with self._lock:
            self.expired = True
            for sock in self._sockets:
                _shutdown(sock)

    def __enter__(self) -> "_Deadline":
        _ACTIVE.deadline = self
        self._timer.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._timer.cancel()
        _ACTIVE.deadline = None


def _shutdown(sock: Optional[socket.socket]) -> None:
    try:  # socket.socket's own shutdown: an SSLSocket's would first drop its TLS state under the reader
        socket.socket.shutdown(sock, socket.SHUT_RDWR)
    except (OSError, TypeError):
        pass


_ACTIVE = threading.local()  # the deadline of the fetch running on this thread


class _WatchedHTTPConnection(HTTPConnection):
    def connect(self) -> None:
        super().connect()
        deadline = getattr(_ACTIVE, "deadline", None)
        if deadline is not None:
            deadline.watch(self.sock)


class _WatchedHTTPSConnection(HTTPSConnection):
    def connect(self) -> None:
        super().connect()
        deadline = getattr(_ACTIVE, "deadline", None)
        if deadline is not None:
            deadline.watch(self.sock)


class _WatchedHTTPPool(HTTPConnectionPool):
    ConnectionCls = _WatchedHTTPConnection


class _WatchedHTTPSPool(HTTPSConnectionPool):
    ConnectionCls = _WatchedHTTPSConnection


_WATCHED_POOLS = {"http": _WatchedHTTPPool, "https": _WatchedHTTPSPool}


def _session() -> Any:
    """A requests session whose connections (direct or through a proxy) report to the deadline,
    and that leaves redirects alone (requests parses the next Location even when not following)."""
    import requests
    from requests.adapters import HTTPAdapter

    class WatchedAdapter(HTTPAdapter):
        def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
            super().init_poolmanager(*args, **kwargs)
            self.poolmanager.pool_classes_by_scheme = _WATCHED_POOLS

        def proxy_manager_for(self, proxy: str, **proxy_kwargs: Any) -> Any:
            manager = super().proxy_manager_for(proxy, **proxy_kwargs)
            manager.pool_classes_by_scheme = _WATCHED_POOLS
            return manager

    class OneHopSession(requests.Session):
        def resolve_redirects(self, *args: Any, **kwargs: Any) -> Any:
            return iter(())  # fetch_url follows (and checks) each Location itself

    session = OneHopSession()
    session.mount("http://", WatchedAdapter())
    session.mount("https://", WatchedAdapter())
    return session


# ---------------------------------------------------------------------------------------------
# fetching


def fetch_url(url: str, *, timeout: float, max_bytes: int, allow_private: bool = True) -> bytes:
    """GET ``url`` (http/https only), at most ``max_bytes``, within ``timeout`` seconds in total.

    With ``allow_private=False`` (the HTTP server) every hop of a redirect chain must resolve to
    public addresses. The check resolves the name before the request, so a DNS server that
    answers differently the second time could still slip through; run the server behind an
    egress firewall where that matters.
    """
    import requests

    current = url
    with _session() as session, _Deadline(timeout) as deadline:
        for _ in range(MAX_REDIRECTS + 1):
            check_url(current)
            if not allow_private:
                check_public_host(current)
            try:
                response = session.get(current, stream=True, timeout=deadline.remaining(), allow_redirects=False)
            except (requests.RequestException, ValueError, UnicodeError) as err:
                if deadline.expired or isinstance(err, requests.Timeout):
                    raise InputError(url, f"the server did not answer within {timeout:g} s") from None
                raise InputError(url, f"the URL cannot be fetched ({type(err).__name__}: {err})") from None
            with response:
                if response.is_redirect:
                    current = _redirect_target(url, current, response.headers.get("Location"))
                    continue
                if response.status_code != 200:
                    raise InputError(url, f"the server answered HTTP {response.status_code} {response.reason}")
                return _read_body(response, url, deadline, max_bytes)
    raise InputError(url, f"more than {MAX_REDIRECTS} redirects")


def _redirect_target(url: str, current: str, location: Optional[str]) -> str:
    if not location:
        raise InputError(url, "the server answered a redirect without a Location")
    try:
        target = urljoin(current, location)
    except ValueError as err:
        raise InputError(url, f"the server redirected to a malformed URL {location!r} ({err})") from None
    try:
        check_url(target)
    except InputError as err:
        raise InputError(url, f"the server redirected to {location!r}: {err.reason}") from None
    return target


def _read_body(response: Any, url: str, deadline: _Deadline, max_bytes: int) -> bytes:
    import requests

    declared = response.headers.get("Content-Length")
    if declared and declared.isdigit() and int(declared) > max_bytes:
        raise InputError(url, f"the file is {int(declared)} bytes, more than the limit of {max_bytes} bytes")
    chunks: List[bytes] = []
    received = 0
    late = InputError(url, f"the download did not finish within {deadline.seconds:g} s")
    try:
        for chunk in response.iter_content(chunk_size=65536):
            received += len(chunk)
            if received > max_bytes:
                raise InputError(url, f"the file is larger than the limit of {max_bytes} bytes")
            chunks.append(chunk)
    except requests.RequestException as err:  # broken connections, and the watchdog's shutdown
        if deadline.expired:
            raise late from None
        raise InputError(url, f"the download failed ({type(err).__name__}); the server is too slow or went away") from None
    if deadline.expired:  # the shutdown may look like the end of a body without Content-Length
        raise late
    return b"".join(chunks)
