"""The `remote` backend: the `edge serve` endpoint (or PaddleX's own service) as a predictor.

`RemotePredictor(serving_config, model_name)(image_bgr, threshold)` posts the image as lossless
PNG in Base64 with `visualize: false`, and decodes the answer's RLE masks back into the
box-cropped uint8 masks, so the result is the same `Detections` as local inference gives.
Any failure (server down, timeout, error status, an answer that is not the contract) is a
`RemoteError` that names the endpoint's URL.
"""
from __future__ import annotations

import logging
import threading
from typing import Any, Dict, List, Mapping, Optional

import numpy as np

from .errors import ConfigError, RemoteError
from .postprocess import Detections
from .serve.codec import decode_mask, encode_png_base64, endpoint_url

logger = logging.getLogger(__name__)


class RemotePredictor:
    """A `Predictor` (edge/predictor.py) whose engine is the server at `Serving.url`."""

    def __init__(self, serving: Mapping[str, Any], model_name: Optional[str] = None):
        url = (serving or {}).get("url")
        if not url:
            raise ConfigError(
                "the remote backend needs Serving.url (e.g. http://127.0.0.1:8080, where `edge serve` runs)"
                + (f" to run {model_name}" if model_name else "")
            )
        if not str(url).lower().startswith(("http://", "https://")):
            raise ConfigError(f"Serving.url must be an http:// or https:// URL, got {url!r}")
        self.url = endpoint_url(str(url))
        self.timeout = float(serving.get("timeout") or 60)
        self.model_name = model_name
        self.name = f"remote:{self.url}"
        self.spec = None  # the server's model is not known here; thresholds default to 0.5
        self._sessions = threading.local()  # a requests.Session per thread

    def _session(self):
        import requests

        session = getattr(self._sessions, "session", None)
        if session is None:
            session = self._sessions.session = requests.Session()
        return session

    def __call__(self, image: np.ndarray, threshold: float) -> Detections:
        import requests

        payload = {"image": encode_png_base64(image), "threshold": float(threshold), "visualize": False}
        try:
            response = self._session().post(self.url, json=payload, timeout=self.timeout)
        except requests.Timeout:
            raise RemoteError(f"the server at {self.url} did not answer within {self.timeout:g} s; "
                              "raise Serving.timeout or check the server's load") from None
        except requests.RequestException as err:
            raise RemoteError(f"the server at {self.url} cannot be reached ({type(err).__name__}); "
                              "start it with `edge serve` or fix Serving.url") from None
        body = self._json(response)
        if response.status_code != 200 or body.get("errorCode") != 0:
            raise RemoteError(f"the server at {self.url} answered HTTP {response.status_code} "
                              f"(errorCode {body.get('errorCode')}, logId {body.get('logId')}): {body.get('errorMsg')}")
        try:
            return self._detections(body["result"]["instances"], self.name)
        except (KeyError, TypeError, ValueError) as err:
            raise RemoteError(f"the answer of {self.url} does not follow the serving contract ({err!r})") from None

    def _json(self, response: Any) -> Dict[str, Any]:
        try:
            body = response.json()
        except ValueError:
            body = None
        if not isinstance(body, dict):
            raise RemoteError(f"{self.url} answered HTTP {response.status_code} with a body that is not the serving "
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
