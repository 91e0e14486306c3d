"""Helpers shared by the serving tests (imported by conftest.py and the test modules)."""
from __future__ import annotations

import base64
import socket
import uuid
from pathlib import Path

from edge.serve.app import create_app
from edge.serve.limits import ServeLimits
from edge.serve.runner import BackgroundServer, pipeline_factory


def model_overrides(model_dir: Path) -> dict:
    return {"SubModules": {"InstanceSegmentation": {"model_dir": str(model_dir)}}}


def start_server(model_dir: Path, **limits) -> BackgroundServer:
    app = create_app(pipeline_factory("instance_segmentation", model_overrides(model_dir)),
                     ServeLimits(**{"allow_private_urls": True, **limits}))
    return BackgroundServer(app).start()


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def assert_envelope(body: dict, status: int) -> None:
    """The contract's envelope: uuid4 logId, errorCode 0 / the HTTP status, a message."""
    assert uuid.UUID(body["logId"]).version == 4
    assert body["errorCode"] == (0 if status == 200 else status)
    assert isinstance(body["errorMsg"], str) and body["errorMsg"]
    if status != 200:
        assert "result" not in body


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]
