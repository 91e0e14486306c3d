"""The `remote` backend: the `edge serve` endpoint (or PaddleX's own service) as a predictor.

`RemotePredictor(serving_config, model_name)(image_bgr, threshold)` posts the image as lossless
PNG in Base64 with `visualize: false`, and decodes the answer's RLE masks back into the
box-cropped uint8 masks, so the result is the same `Detections` as local inference gives.
Any failure (server down, timeout, error status, an answer that is not the contract) is a
`RemoteError` that names the endpoint's URL.

`Serving.url` may be a list of servers (several `edge serve`, or several Ray Serve clusters):
each image goes to the next one in turn, so load is spread; a server that cannot be reached,
times out or answers 502 / 503 / 504 is left for a back-off (1 s, doubling up to 30 s, at least
its Retry-After) and the image is asked of the next one; once its back-off is over, a server is
used again only after its `/health` answers. Servers still backing off are tried last, so an image
fails only when every server failed it. Any other answer (400, 413, 422, 500: the image or the
model is the problem, another server would say the same) is a `RemoteError` at once.
`computed_by` names the server that answered.
"""
from __future__ import annotations

import logging
import threading
import time
from typing import Any, Dict, List, Mapping, Optional, Sequence

import numpy as np

from .errors import ConfigError, RemoteError
from .postprocess import Detections
from .serve.codec import HEALTH_PATH, INFER_PATH, decode_mask, encode_png_base64, endpoint_url

logger = logging.getLogger(__name__)


BACKOFF_S = 1.0  # first back-off of a failed server; doubles with each failure in a row
BACKOFF_MAX_S = 30.0
HEALTH_TIMEOUT_S = 5.0
RETRY_ELSEWHERE = (502, 503, 504)  # the server (or a gateway before it) cannot answer now; another may


class _Unavailable(RemoteError):
    """This server cannot answer now (down, timed out, busy, replica gone): ask another one."""

    def __init__(self, message: str, retry_after: float = 0.0):
        super().__init__(message)
        self.retry_after = retry_after


class _Server:
    """One `edge serve` endpoint and its back-off state (guarded by the predictor's lock)."""

    def __init__(self, url: str):
        self.url = endpoint_url(url)
        self.health_url = self.url[: -len(INFER_PATH)] + HEALTH_PATH
        self.name = f"remote:{self.url}"
        self.failures = 0  # in a row
        self.retry_at = 0.0  # time.monotonic() before which it is left alone


def _server_urls(serving: Mapping[str, Any], model_name: Optional[str]) -> List[str]:
    url = (serving or {}).get("url")
    urls: Sequence[Any] = url if isinstance(url, (list, tuple)) else [url] if url else []
    if not urls:
        raise ConfigError(
            "the remote backend needs Serving.url (e.g. http://127.0.0.1:8080, where `edge serve` runs, "
            "or a list of such URLs)" + (f" to run {model_name}" if model_name else "")
        )
    for item in urls:
        if not isinstance(item, str) or not item.lower().startswith(("http://", "https://")):
            raise ConfigError(f"Serving.url must be an http:// or https:// URL (or a list of them), got {item!r}")
    return list(urls)


class RemotePredictor:
    """A `Predictor` (edge/predictor.py) whose engine is the server (or servers) at `Serving.url`."""

    def __init__(self, serving: Mapping[str, Any], model_name: Optional[str] = None):
        self.servers = [_Server(url) for url in _server_urls(serving, model_name)]
        self.url = self.servers[0].url if len(self.servers) == 1 else ", ".join(s.url for s in self.servers)
        self.timeout = float(serving.get("timeout") or 60)
        self.model_name = model_name
        self.name = f"remote:{self.url}"
        self.spec = None  # the server's model is not known here; thresholds default to 0.5
        self._sessions = threading.local()  # a requests.Session per thread
        self._lock = threading.Lock()
        self._turn = 0

    def _session(self):
        import requests

        session = getattr(self._sessions, "session", None)
        if session is None:
            session = self._sessions.session = requests.Session()
        return session

    def __call__(self, image: np.ndarray, threshold: float) -> Detections:
        payload = {"image": encode_png_base64(image), "threshold": float(threshold), "visualize": False}
        failed: List[str] = []
        for server in self._order():
            try:
                if server.failures and len(self.servers) > 1 and not self._healthy(server):
                    raise _Unavailable(f"the server at {server.url} failed {server.failures} time(s) in a row "
                                       f"and {server.health_url} does not answer 200 yet")
                detections = self._ask(server, payload)
            except _Unavailable as err:
                self._back_off(server, err.retry_after)
                if len(self.servers) == 1:
                    raise RemoteError(str(err)) from None
                logger.warning("%s; asking the next server", err)
                failed.append(str(err))
                continue
            with self._lock:
                server.failures, server.retry_at = 0, 0.0
            return detections
        raise RemoteError(f"none of the {len(self.servers)} servers answered: " + "; ".join(failed))

    def _order(self) -> List[_Server]:
        """The servers from the next one in turn; those backing off last (soonest back first)."""
        with self._lock:
            start = self._turn % len(self.servers)
            self._turn += 1
            turn = self.servers[start:] + self.servers[:start]
            now = time.monotonic()
            return ([s for s in turn if s.retry_at <= now]
                    + sorted((s for s in turn if s.retry_at > now), key=lambda s: s.retry_at))

    def _back_off(self, server: _Server, retry_after: float) -> None:
        with self._lock:
            server.failures += 1
            wait = max(min(BACKOFF_S * 2 ** (server.failures - 1), BACKOFF_MAX_S), retry_after)
            server.retry_at = time.monotonic() + wait

    def _healthy(self, server: _Server) -> bool:
        import requests

        try:
            return self._session().get(server.health_url, timeout=min(HEALTH_TIMEOUT_S, self.timeout)).status_code == 200
        except requests.RequestException:
            return False

    def _ask(self, server: _Server, payload: Dict[str, Any]) -> Detections:
        import requests

        url = server.url
        try:
            response = self._session().post(url, json=payload, timeout=self.timeout)
        except requests.Timeout:
            raise _Unavailable(f"the server at {url} did not answer within {self.timeout:g} s; "
                               "raise Serving.timeout or check the server's load") from None
        except requests.RequestException as err:
            raise _Unavailable(f"the server at {url} cannot be reached ({type(err).__name__}); "
                               "start it with `edge serve` or fix Serving.url") from None
        if response.status_code in RETRY_ELSEWHERE:
            raise _Unavailable(f"the server at {url} answered HTTP {response.status_code} "
                               f"({_error_message(response)})", _retry_after(response))
        body = self._json(response, url)
        if response.status_code != 200 or body.get("errorCode") != 0:
            raise RemoteError(f"the server at {url} answered HTTP {response.status_code} "
                              f"(errorCode {body.get('errorCode')}, logId {body.get('logId')}): {body.get('errorMsg')}")
        try:
            return self._detections(body["result"]["instances"], server.name)
        except (KeyError, TypeError, ValueError) as err:
            raise RemoteError(f"the answer of {url} does not follow the serving contract ({err!r})") from None

    @staticmethod
    def _json(response: Any, url: str) -> Dict[str, Any]:
        try:
            body = response.json()
        except ValueError:
            body = None
        if not isinstance(body, dict):
            raise RemoteError(f"{url} answered HTTP {response.status_code} with a body that is not the serving "
                              "envelope; is Serving.url an `edge serve` / PaddleX endpoint?")
        return body

    @staticmethod
    def _detections(instances: List[Dict[str, Any]], computed_by: str) -> Detections:
        boxes, masks = [], []
        for item in instances:
            boxes.append({"cls_id": int(item["categoryId"]), "label": str(item["categoryName"]),
                          "score": float(item["score"]), "coordinate": [float(v) for v in item["bbox"]]})
            masks.append(decode_mask(item["mask"]["rleResult"], item["mask"]["size"]))
        return Detections(boxes, masks, computed_by)


def _error_message(response: Any) -> str:
    try:
        return str(response.json().get("errorMsg"))
    except (ValueError, AttributeError):
        return response.text[:200]


def _retry_after(response: Any) -> float:
    try:
        return max(0.0, float(response.headers.get("Retry-After", 0)))
    except ValueError:  # an HTTP date: not worth parsing, the back-off applies
        return 0.0
