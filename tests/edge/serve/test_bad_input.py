"""Bad requests get the documented status and envelope, and the server stays up after each."""
from __future__ import annotations

import json
import socket
import struct
import threading
import time
import zlib

import cv2
import numpy as np
import pytest
import requests

from serving_helpers import assert_envelope, b64, closed_port, start_server

INFER = "/instance-segmentation"


def png_declaring(width: int, height: int) -> bytes:
    """A PNG whose header declares width x height, with a valid CRC and an (almost) empty body."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"")) + chunk(b"IEND", b"")


def small_png() -> bytes:
    image = np.zeros((48, 64, 3), np.uint8)
    image[10:30, 20:50] = (40, 200, 90)
    return cv2.imencode(".png", image)[1].tobytes()


def raw(server, data: bytes, **kwargs) -> requests.Response:
    return requests.post(server.url + INFER, data=data, headers={"Content-Type": "application/json"}, timeout=60, **kwargs)


def stays_up(server) -> None:
    assert requests.get(server.url + "/health", timeout=10).json()["errorMsg"] == "Healthy"
    ok = requests.post(server.url + INFER, json={"image": b64(small_png()), "visualize": False}, timeout=60)
    assert ok.status_code == 200 and ok.json()["errorCode"] == 0


def radiance_hdr() -> bytes:
    """A Radiance HDR file: OpenCV decodes it, without the header check every accepted format gets."""
    return cv2.imencode(".hdr", np.full((48, 64, 3), 0.5, np.float32))[1].tobytes()


# (case, request body, HTTP status, words the errorMsg must contain)
CASES = [
    ("invalid JSON", b'{"image": "abc', 422, ["json_invalid"]),
    ("JSON that is not an object", b'[1, 2]', 422, ["body"]),
    ("missing image", json.dumps({"threshold": 0.5}).encode(), 422, ["missing", "image"]),
    ("image not a string", json.dumps({"image": 12}).encode(), 422, ["string_type", "image"]),
    ("threshold of 2", json.dumps({"image": b64(small_png()), "threshold": 2}).encode(), 422, ["threshold", "less than 1"]),
    ("threshold of 0", json.dumps({"image": b64(small_png()), "threshold": 0}).encode(), 422, ["threshold", "greater than 0"]),
    ("bad Base64", json.dumps({"image": "not*base64!"}).encode(), 400, ["Base64"]),
    ("empty image string", json.dumps({"image": ""}).encode(), 400, ["empty"]),
    ("truncated PNG", json.dumps({"image": b64(small_png()[:-30])}).encode(), 400, ["truncated"]),
    ("non-image bytes", json.dumps({"image": b64(b"just some text, not a picture" * 4)}).encode(), 400, ["not an image"]),
    ("zero-size image", json.dumps({"image": b64(png_declaring(0, 32))}).encode(), 400, ["zero"]),
    ("over max_pixels", json.dumps({"image": b64(png_declaring(8000, 6000))}).encode(), 400, ["max_pixels=40000000"]),
    ("20000x20000 header", json.dumps({"image": b64(png_declaring(20000, 20000))}).encode(), 400, ["too large"]),
    ("Radiance HDR", json.dumps({"image": b64(radiance_hdr())}).encode(), 400, ["not accepted", "JPEG, PNG"]),
    ("file:// URL", json.dumps({"image": "file:///etc/passwd"}).encode(), 400, ["scheme 'file'", "only http"]),
    ("ftp:// URL", json.dumps({"image": "ftp://127.0.0.1/x.png"}).encode(), 400, ["scheme 'ftp'"]),
]


@pytest.mark.parametrize("case,body,status,words", CASES, ids=[c[0] for c in CASES])
def test_bad_request(server, case, body, status, words):
    response = raw(server, body)
    assert response.status_code == status, response.text
    envelope = response.json()
    assert_envelope(envelope, status)
    for word in words:
        assert word in envelope["errorMsg"], envelope["errorMsg"]
    if status == 422:  # a JSON list of {type, loc, msg}, without the (possibly huge) input echoed
        errors = json.loads(envelope["errorMsg"])
        assert errors and all(set(e) == {"type", "loc", "msg"} for e in errors)
    stays_up(server)


def test_url_to_a_closed_port(server):
    url = f"http://127.0.0.1:{closed_port()}/photo.jpg"
    response = requests.post(server.url + INFER, json={"image": url}, timeout=60)
    assert response.status_code == 400
    assert_envelope(response.json(), 400)
    assert url in response.json()["errorMsg"] and "cannot be fetched" in response.json()["errorMsg"]
    stays_up(server)


def test_url_missing_on_the_host(server, image_host):
    base, _ = image_host
    response = requests.post(server.url + INFER, json={"image": f"{base}/nothing.jpg"}, timeout=60)
    assert response.status_code == 400 and "HTTP 404" in response.json()["errorMsg"]


def test_private_addresses_are_refused_by_default(standin_edge, image_host, sample_images):
    base, _ = image_host
    live = start_server(standin_edge.inference_dir, allow_private_urls=False)
    port = base.rsplit(":", 1)[1]
    try:
        response = requests.post(live.url + INFER, json={"image": f"{base}/{sample_images[0].name}"}, timeout=60)
        assert response.status_code == 400
        assert_envelope(response.json(), 400)
        assert "non-public address (127.0.0.1)" in response.json()["errorMsg"]
        # IPv6 addresses that carry 127.0.0.1 / 10.0.0.1 / 169.254.169.254: NAT64, 6to4, IPv4-compatible, Teredo
        for host in ("64:ff9b::7f00:1", "64:ff9b::a00:1", "2002:7f00:1::1", "2002:a9fe:a9fe::1", "::7f00:1",
                     "2001:0:4136:e378:8000:63bf:80ff:fffe", "64:ff9b:1::a00:1"):
            response = requests.post(live.url + INFER, json={"image": f"http://[{host}]:{port}/x.jpg"}, timeout=60)
            assert response.status_code == 400, response.text
            assert "non-public address" in response.json()["errorMsg"], response.json()["errorMsg"]
        stays_up(live)
    finally:
        live.stop()


def test_oversize_body_declared(standin_edge):
    live = start_server(standin_edge.inference_dir, max_body_bytes=200_000)
    try:
        body = json.dumps({"image": "A" * 300_000}).encode()
        response = raw(live, body)
        assert response.status_code == 413
        assert_envelope(response.json(), 413)
        assert "200000 bytes" in response.json()["errorMsg"]
        # chunked, without Content-Length: counted while it arrives
        chunks = (body[i:i + 65536] for i in range(0, len(body), 65536))
        response = raw(live, chunks)
        assert response.status_code == 413 and response.json()["errorCode"] == 413
        stays_up(live)
    finally:
        live.stop()


def test_default_body_limit_is_20_mib(server):
    response = raw(server, b'{"image": "' + b"A" * (21 * 2**20) + b'"}')
    assert response.status_code == 413 and response.json()["errorCode"] == 413
    stays_up(server)


def test_unknown_path_and_method_keep_their_status(server):
    missing = requests.get(server.url + "/nowhere", timeout=10)
    assert missing.status_code == 404
    assert_envelope(missing.json(), 404)
    wrong = requests.get(server.url + INFER, timeout=10)
    assert wrong.status_code == 405
    assert_envelope(wrong.json(), 405)


def test_full_queue_answers_503_at_once(standin_edge, image_host, sample_images):
    base, host = image_host
    host.slow_started.clear()
    host.release.clear()
    live = start_server(standin_edge.inference_dir, workers=1, max_queue=0)
    try:
        answers = {}
        slow = threading.Thread(target=lambda: answers.setdefault("slow", requests.post(
            live.url + INFER, json={"image": f"{base}/slow/{sample_images[0].name}"}, timeout=60)))
        slow.start()
        assert host.slow_started.wait(10)  # the only place is taken (fetching its URL)
        busy = requests.post(live.url + INFER, json={"image": b64(small_png())}, timeout=10)
        assert busy.status_code == 503 and busy.headers["Retry-After"] == "1"
        assert_envelope(busy.json(), 503)
        assert "busy" in busy.json()["errorMsg"]
        big = raw(live, json.dumps({"image": "A" * 3_000_000}).encode())  # refused before its body is read
        assert big.status_code == 503 and big.json()["errorCode"] == 503
        host.release.set()
        slow.join(30)
        assert answers["slow"].status_code == 200
        stays_up(live)  # the place is free again
    finally:
        host.release.set()
        live.stop()


def test_engine_failure_is_a_500_and_the_server_stays_up(broken_model_dir):
    live = start_server(broken_model_dir)
    try:
        for _ in range(2):
            response = requests.post(live.url + INFER, json={"image": b64(small_png())}, timeout=60)
            assert response.status_code == 500
            assert_envelope(response.json(), 500)
            assert response.json()["errorMsg"] == "Internal server error"
        assert requests.get(live.url + "/health", timeout=10).status_code == 200
    finally:
        live.stop()


def test_url_size_cap_and_timeout(standin_edge, image_host, sample_images):
    base, host = image_host
    host.release.clear()
    live = start_server(standin_edge.inference_dir, url_max_bytes=10_000, url_timeout=0.5)
    try:
        name = sample_images[0].name  # larger than 10,000 bytes
        too_big = requests.post(live.url + INFER, json={"image": f"{base}/{name}"}, timeout=60)
        assert too_big.status_code == 400
        assert_envelope(too_big.json(), 400)
        assert "more than the limit of 10000 bytes" in too_big.json()["errorMsg"]
        slow = requests.post(live.url + INFER, json={"image": f"{base}/slow/{name}"}, timeout=60)
        assert slow.status_code == 400 and "within 0.5 s" in slow.json()["errorMsg"]
        stays_up(live)
    finally:
        host.release.set()
        live.stop()


# --- slow clients: a deadline on heads and bodies; a queue place only once the body is in -------


def open_slow_upload(url: str, declared: int = 1000, sent: bytes = b'{"ima') -> socket.socket:
    """A connection that declares a `declared`-byte body and sends only `sent` of it."""
    host, port = url.rsplit("/", 1)[-1].split(":")
    sock = socket.create_connection((host, int(port)), timeout=10)
    sock.sendall(f"POST {INFER} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
                 f"Content-Length: {declared}\r\n\r\n".encode() + sent)
    return sock


def read_until_closed(sock: socket.socket) -> bytes:
    """Everything the server sends until it closes the connection (socket.timeout if it never does)."""
    data = b""
    while True:
        chunk = sock.recv(65536)
        if not chunk:
            return data
        data += chunk


def test_slow_uploads_hold_no_queue_place(standin_edge):
    live = start_server(standin_edge.inference_dir, workers=1, max_queue=4)
    slow = [open_slow_upload(live.url) for _ in range(2 * 4)]
    try:
        time.sleep(0.5)  # every slow request has reached the app
        answer = requests.post(live.url + INFER, json={"image": b64(small_png()), "visualize": False}, timeout=10)
        assert answer.status_code == 200, answer.text
        assert answer.json()["errorCode"] == 0
    finally:
        for sock in slow:
            sock.close()
        live.stop()


@pytest.fixture(scope="module")
def impatient_server(standin_edge):
    """A server that gives clients one second for a request head and one for its body."""
    live = start_server(standin_edge.inference_dir, body_timeout=1.0)
    yield live
    live.stop()


def test_slow_body_gets_408_and_the_connection_closes(impatient_server):
    sock = open_slow_upload(impatient_server.url)
    with sock:
        answer = read_until_closed(sock)
    status_line, _, rest = answer.partition(b"\r\n")
    assert status_line == b"HTTP/1.1 408 Request Timeout", answer
    body = json.loads(rest.split(b"\r\n\r\n", 1)[1])
    assert_envelope(body, 408)
    assert "did not arrive within 1 s" in body["errorMsg"]
    stays_up(impatient_server)


def test_slow_request_head_gets_408_and_the_connection_closes(impatient_server):
    host, port = impatient_server.url.rsplit("/", 1)[-1].split(":")
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(f"POST {INFER} HTTP/1.1\r\nHost: {host}\r\nContent-Le".encode())  # never finished
        answer = read_until_closed(sock)
    assert answer.startswith(b"HTTP/1.1 408 "), answer
    assert_envelope(json.loads(answer.split(b"\r\n\r\n", 1)[1]), 408)
    with socket.create_connection((host, int(port)), timeout=10) as sock:  # a connection that says nothing
        assert read_until_closed(sock) == b""


def test_trickling_keep_alive_connection_is_closed(impatient_server):
    """uvicorn's keep-alive timer stops at the first byte of a next request; the head deadline does not."""
    host, port = impatient_server.url.rsplit("/", 1)[-1].split(":")
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(f"GET /health HTTP/1.1\r\nHost: {host}\r\n\r\n".encode())
        first = b""
        while b"Healthy" not in first:
            first += sock.recv(65536)
        assert first.startswith(b"HTTP/1.1 200 "), first
        sock.sendall(b"G")  # a next request that never comes
        answer = read_until_closed(sock)
    assert answer.startswith(b"HTTP/1.1 408 "), answer


# --- the body is JSON whatever its Content-Type; anything else is a 422 that says what to send --


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded", None,
                                          "application/octet-stream"])
def test_a_json_object_is_accepted_whatever_the_content_type(server, content_type):
    body = json.dumps({"image": b64(small_png()), "visualize": False})
    headers = {} if content_type is None else {"Content-Type": content_type}
    response = requests.post(server.url + INFER, data=body, headers=headers, timeout=60)
    assert response.status_code == 200, response.text
    assert_envelope(response.json(), 200)


NOT_JSON = [
    ("form fields", b"image=abc&threshold=0.5", "application/x-www-form-urlencoded"),
    ("plain text", b"hello", "text/plain"),
    ("bytes that are not text", b"\xff\xfe\x00garbage", "application/json"),
    ("JSON nested 100000 deep", b"[" * 100_000 + b"]" * 100_000, "application/json"),
    ("deep value inside an object", b'{"image": "x", "extra": ' + b"[" * 100_000 + b"]" * 100_000 + b"}",
     "application/json"),
]


@pytest.mark.parametrize("body,content_type", [c[1:] for c in NOT_JSON], ids=[c[0] for c in NOT_JSON])
def test_a_body_that_is_not_json_gets_422_asking_for_a_json_object(server, body, content_type):
    response = requests.post(server.url + INFER, data=body, headers={"Content-Type": content_type}, timeout=60)
    assert response.status_code == 422, response.text
    envelope = response.json()
    assert_envelope(envelope, 422)
    errors = json.loads(envelope["errorMsg"])
    assert errors and all(set(e) == {"type", "loc", "msg"} for e in errors)
    assert errors[0]["type"] == "json_invalid" and "send a JSON object" in errors[0]["msg"], errors
    stays_up(server)


# --- malformed URLs are a 400; the URL timeout is a total deadline ------------------------------


MALFORMED_URLS = [
    ("unclosed IPv6 bracket", "http://[::1/x.jpg", "malformed"),
    ("port out of range", "http://127.0.0.1:99999/x.jpg", "malformed"),
    ("port not a number", "http://127.0.0.1:abc/x.jpg", "malformed"),
    ("host label over 63 characters", f"http://{'a' * 64}.example/x.jpg", "host name"),
]


@pytest.mark.parametrize("url,words", [c[1:] for c in MALFORMED_URLS], ids=[c[0] for c in MALFORMED_URLS])
@pytest.mark.parametrize("private", ["allowed", "refused"])
def test_malformed_url_is_a_400(standin_edge, server, url, words, private):
    live = server if private == "allowed" else start_server(standin_edge.inference_dir, allow_private_urls=False)
    try:
        response = requests.post(live.url + INFER, json={"image": url}, timeout=60)
        assert response.status_code == 400, response.text
        assert_envelope(response.json(), 400)
        assert words in response.json()["errorMsg"]
        stays_up(live)
    finally:
        if live is not server:
            live.stop()


@pytest.mark.parametrize("location", ["http://[::1/x.jpg", "http://127.0.0.1:99999/x.jpg", ""])
def test_redirect_to_a_malformed_location_is_a_400(server, image_host, location):
    base, _ = image_host
    response = requests.post(server.url + INFER, json={"image": f"{base}/redirect/{location}"}, timeout=60)
    assert response.status_code == 400, response.text
    assert_envelope(response.json(), 400)
    message = response.json()["errorMsg"]
    assert ("redirected to" in message and "malformed" in message) or "redirect without a Location" in message, message


def test_url_timeout_is_a_total_deadline(standin_edge, image_host, sample_images):
    """An origin that trickles a byte every 0.25 s (each read is quick) is cut off at --url-timeout."""
    base, _ = image_host
    live = start_server(standin_edge.inference_dir, url_timeout=1.0)
    try:
        sent = time.monotonic()
        response = requests.post(live.url + INFER, json={"image": f"{base}/trickle/{sample_images[0].name}"}, timeout=60)
        waited = time.monotonic() - sent
        assert response.status_code == 400, response.text
        assert "did not finish within 1 s" in response.json()["errorMsg"]
        assert waited < 8, f"the fetch took {waited:.1f} s; the origin trickles for 10 s"
        stays_up(live)
    finally:
        live.stop()


def test_bodies_in_memory_share_a_budget(standin_edge):
    """Budget = (workers + max_queue) x max_body: one half-sent 150 kB body leaves no room for another 100 kB."""
    live = start_server(standin_edge.inference_dir, workers=1, max_queue=0, max_body_bytes=200_000)
    try:
        slow = open_slow_upload(live.url, declared=190_000, sent=b'{"image": "' + b"A" * 150_000)
        time.sleep(0.5)  # its bytes are in
        crowded = raw(live, json.dumps({"image": "A" * 100_000}).encode())
        assert crowded.status_code == 503 and crowded.headers["Retry-After"] == "1", crowded.text
        assert_envelope(crowded.json(), 503)
        assert "too many request bodies" in crowded.json()["errorMsg"]
        slow.close()
        time.sleep(0.5)  # its bytes are given back
        stays_up(live)
    finally:
        live.stop()
