"""The download stage against a real HTTP server on 127.0.0.1 (Range support, dropped connections)."""
from __future__ import annotations

import hashlib
import io
import logging
import os
import socket
import tarfile
import threading
from pathlib import Path
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Dict, List, Optional

import pytest

import export  # noqa: F401  (PIR off before anything imports paddle)
from edge.errors import ExportError
from edge.files import sha256_file
from export.download import extract_tar, fetch, fetch_model


class FileServer:
    """Serves `files` (url path -> bytes); honours `Range: bytes=N-`; can cut a response short."""

    def __init__(self) -> None:
        self.files: Dict[str, bytes] = {}
        self.drop_after: Dict[str, int] = {}  # path -> bytes to send before closing (once)
        self.ranges: List[Optional[str]] = []
        self.ignore_range = False  # behave like a server without Range support
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:  # keep pytest output clean
                pass

            def do_GET(self) -> None:
                server.ranges.append(self.headers.get("Range"))
                body = server.files.get(self.path)
                if body is None:
                    self.send_error(404)
                    return
                start = 0
                rng = None if server.ignore_range else self.headers.get("Range")
                if rng:
                    start = int(rng.split("=")[1].split("-")[0])
                    if start >= len(body):
                        self.send_response(416)
                        self.send_header("Content-Range", f"bytes */{len(body)}")
                        self.send_header("Content-Length", "0")
                        self.end_headers()
                        return
                    self.send_response(206)
                    self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
                else:
                    self.send_response(200)
                self.send_header("Content-Length", str(len(body) - start))
                self.end_headers()
                cut = server.drop_after.pop(self.path, None)
                if cut is not None:
                    self.wfile.write(body[start:start + cut])
                    self.wfile.flush()
                    self.connection.shutdown(socket.SHUT_RDWR)
                    self.close_connection = True
                    return
                self.wfile.write(body[start:])

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server():
    srv = FileServer()
    yield srv
    srv.close()


def _payload(n: int = 300_000) -> bytes:
    return os.urandom(n)


def test_download_then_cache_hit(server, tmp_path):
    data = _payload()
    server.files["/m/weights.pdparams"] = data
    path = fetch(server.base + "/m/weights.pdparams", tmp_path, progress=False)
    assert path == tmp_path / "weights.pdparams" and path.read_bytes() == data
    recorded = (tmp_path / "weights.pdparams.sha256").read_text().strip()
    assert recorded == hashlib.sha256(data).hexdigest()
    assert not (tmp_path / "weights.pdparams.part").exists()

    server.files.clear()  # a cache hit must not touch the network
    assert fetch(server.base + "/m/weights.pdparams", tmp_path, progress=False) == path
    assert len(server.ranges) == 1


def test_interrupted_download_resumes_with_range(server, tmp_path):
    data = _payload()
    url = server.base + "/w.pdparams"
    server.files["/w.pdparams"] = data
    server.drop_after["/w.pdparams"] = 100_000
    with pytest.raises(ExportError, match=r"interrupted.*resumes"):
        fetch(url, tmp_path, progress=False, retries=0)
    part = tmp_path / "w.pdparams.part"
    kept = part.stat().st_size
    assert 0 < kept <= 100_000, "whole chunks that arrived are kept"

    path = fetch(url, tmp_path, progress=False, retries=0)
    assert path.read_bytes() == data
    assert server.ranges == [None, f"bytes={kept}-"]


def test_automatic_retry_resumes_in_one_call(server, tmp_path, caplog):
    data = _payload()
    server.files["/w.pdparams"] = data
    server.drop_after["/w.pdparams"] = 150_000
    with caplog.at_level(logging.WARNING, logger="export.download"):
        path = fetch(server.base + "/w.pdparams", tmp_path, progress=True)
    assert path.read_bytes() == data
    assert len(server.ranges) == 2 and server.ranges[0] is None
    assert server.ranges[1].startswith("bytes=") and server.ranges[1] != "bytes=0-"
    assert "resuming" in caplog.text


def test_complete_part_file_is_finished_without_new_bytes(server, tmp_path):
    data = _payload(5000)
    server.files["/w.pdparams"] = data
    (tmp_path / "w.pdparams.part").write_bytes(data)  # the connection died right after the last byte
    assert fetch(server.base + "/w.pdparams", tmp_path, progress=False).read_bytes() == data
    assert server.ranges == ["bytes=5000-"]


def test_server_without_range_support_restarts_the_download(server, tmp_path):
    data = _payload(50_000)
    server.files["/w.pdparams"] = data
    server.ignore_range = True
    (tmp_path / "w.pdparams.part").write_bytes(b"stale bytes from another attempt")
    assert fetch(server.base + "/w.pdparams", tmp_path, progress=False).read_bytes() == data


def test_expected_checksum_mismatch_is_refused(server, tmp_path):
    server.files["/w.pdparams"] = _payload()
    with pytest.raises(ExportError, match="does not match the expected sha256"):
        fetch(server.base + "/w.pdparams", tmp_path, expected_sha256="0" * 64, progress=False)
    assert not any(tmp_path.glob("w.pdparams*")), "an untrusted file must not stay in the cache"


def test_cached_file_changed_after_first_download_is_refused(server, tmp_path):
    data = _payload()
    server.files["/w.pdparams"] = data
    path = fetch(server.base + "/w.pdparams", tmp_path, progress=False)
    path.write_bytes(data[:-1] + bytes([data[-1] ^ 1]))  # bit rot / tampering
    with pytest.raises(ExportError, match="recorded on first download"):
        fetch(server.base + "/w.pdparams", tmp_path, progress=False)
    assert not path.exists()
    # The recorded hash is kept: a re-download of the original is accepted, a changed upstream is not.
    assert fetch(server.base + "/w.pdparams", tmp_path, progress=False).read_bytes() == data
    path.unlink()
    server.files["/w.pdparams"] = _payload()
    with pytest.raises(ExportError, match="recorded on first download"):
        fetch(server.base + "/w.pdparams", tmp_path, progress=False)


def test_404_names_the_url(server, tmp_path):
    url = server.base + "/nope_infer.tar"
    with pytest.raises(ExportError, match="HTTP 404") as info:
        fetch(url, tmp_path, progress=False)
    assert url in str(info.value)
    assert not any(tmp_path.iterdir())


def test_unreachable_host_explains_the_offline_way_out(tmp_path):
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()  # nothing listens there now
    url = f"http://127.0.0.1:{port}/Mask-RT-DETR-S_infer.tar"
    with pytest.raises(ExportError) as info:
        fetch(url, tmp_path, progress=False, timeout=5)
    message = str(info.value)
    assert url in message and "--model-dir DIR" in message and "--weights FILE.pdparams" in message


def _tar_bytes(members: Dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name, body in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(body)
            tar.addfile(info, io.BytesIO(body))
    return buf.getvalue()


def test_fetch_model_downloads_and_extracts_inference_archive(server, tmp_path):
    files = {
        "PP-YOLOE_seg-S_infer/inference.pdmodel": b"program",
        "PP-YOLOE_seg-S_infer/inference.pdiparams": b"params",
        "PP-YOLOE_seg-S_infer/inference.yml": b"Preprocess: []\n",
    }
    path = "/paddlex/official_inference_model/paddle3.0rc0/PP-YOLOE_seg-S_infer.tar"
    server.files[path] = _tar_bytes(files)
    model_dir = fetch_model("PP-YOLOE_seg-S", cache_dir=tmp_path, mirror=server.base, progress=False)
    assert model_dir == tmp_path / "official" / "PP-YOLOE_seg-S_infer"
    assert (model_dir / "inference.pdiparams").read_bytes() == b"params"
    assert not [p for p in tmp_path.rglob(".*partial-*")], "no staging directory left"
    # second call: no download, no re-extraction
    (model_dir / "inference.yml").write_bytes(b"Preprocess: [] # kept\n")
    assert fetch_model("PP-YOLOE_seg-S", cache_dir=tmp_path, mirror=server.base, progress=False) == model_dir
    assert (model_dir / "inference.yml").read_bytes().endswith(b"kept\n")
    assert len(server.ranges) == 1


def test_fetch_model_pretrained_uses_cache_env(server, tmp_path, monkeypatch):
    server.files["/paddlex/official_pretrained_model/Mask-RT-DETR-S_pretrained.pdparams"] = b"weights"
    monkeypatch.setenv("EDGE_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("EDGE_MODEL_MIRROR", server.base)
    path = fetch_model("Mask-RT-DETR-S", kind="pretrained", progress=False)
    assert path == tmp_path / "cache" / "downloads" / "Mask-RT-DETR-S_pretrained.pdparams"
    assert sha256_file(path) == hashlib.sha256(b"weights").hexdigest()


@pytest.mark.parametrize("evil", ["../escape.txt", "/abs/escape.txt", "ok_infer/../../escape.txt"])
def test_tar_with_path_traversal_is_rejected(tmp_path, evil):
    archive = tmp_path / "evil.tar"
    archive.write_bytes(_tar_bytes({"ok_infer/inference.yml": b"x", evil: b"owned"}))
    dest = tmp_path / "out"
    with pytest.raises(ExportError, match="outside the target directory"):
        extract_tar(archive, dest)
    assert not (tmp_path / "escape.txt").exists()
    assert not dest.exists() or not any(dest.iterdir())


def test_tar_with_symlink_is_rejected(tmp_path):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        link = tarfile.TarInfo("m_infer/link")
        link.type, link.linkname = tarfile.SYMTYPE, "/etc/passwd"
        tar.addfile(link)
    archive = tmp_path / "link.tar"
    archive.write_bytes(buf.getvalue())
    with pytest.raises(ExportError, match="link or special file"):
        extract_tar(archive, tmp_path / "out")


def test_corrupt_archive_is_a_clear_error(tmp_path):
    archive = tmp_path / "broken.tar"
    archive.write_bytes(b"not a tar at all" * 10)
    with pytest.raises(ExportError, match="not a readable tar"):
        extract_tar(archive, tmp_path / "out")


def test_a_downloaded_model_is_found_and_run_by_the_runtime(server, tmp_path, monkeypatch):
    """The downloader and the runtime share one cache layout (edge/cache.py): once the exporter's
    downloader has fetched a model, the runtime runs it by name without downloading it again."""
    import cv2

    from edge.pipeline import create_pipeline
    from standin import export_standin

    model_dir = export_standin(tmp_path / "built" / "Mask-RT-DETR-L_infer", graph="reference")
    members = {f"Mask-RT-DETR-L_infer/{p.name}": p.read_bytes() for p in model_dir.iterdir()}
    server.files["/paddlex/official_inference_model/paddle3.0rc0/Mask-RT-DETR-L_infer.tar"] = _tar_bytes(members)
    monkeypatch.setenv("EDGE_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("EDGE_MODEL_MIRROR", server.base)

    fetched = fetch_model("Mask-RT-DETR-L", progress=False)
    pipeline = create_pipeline(config={"SubModules": {"InstanceSegmentation": {"model_name": "Mask-RT-DETR-L"}}})
    assert pipeline.predictor.model.path == fetched
    image = cv2.imread(str(Path(__file__).resolve().parents[2] / "samples" / "coco" / "000000014439.jpg"))
    result = next(iter(pipeline.predict(image, threshold=0.05)))
    assert result.computed_by == "paddle" and result["boxes"]
    assert len(server.ranges) == 1, "the runtime found the download; it did not fetch again"
