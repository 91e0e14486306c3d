"""edge.inputs: every input kind, read for real (files, PDFs, a loopback HTTP server, videos)."""
from __future__ import annotations

import shutil
import struct
import threading
import time
import types
import zlib
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Dict, Iterator, Tuple

import cv2
import numpy as np
import pytest
from PIL import Image

from edge.errors import InputError
from edge.fetch import fetch_url, is_public_address
from edge.inputs import InputItem, PDF_RENDER_SCALE, iter_inputs, read_image_bytes

SAMPLES = sorted((Path(__file__).resolve().parents[2] / "samples" / "coco").glob("*.jpg"))
PHOTO = SAMPLES[0]


def make_pdf(path: Path) -> None:
    """Two pages: red 100x50 pt, blue 60x80 pt (PIL writes images at 72 DPI: 1 px = 1 pt)."""
    first = Image.new("RGB", (100, 50), (255, 0, 0))
    second = Image.new("RGB", (60, 80), (0, 0, 255))
    first.save(path, "PDF", save_all=True, append_images=[second], resolution=72)


def png_bytes(width: int, height: int) -> bytes:
    """A PNG whose header declares width x height, with an (almost) empty body."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"")) + chunk(b"IEND", b"")


def encode(image_bgr: np.ndarray, ext: str) -> bytes:
    ok, buf = cv2.imencode(ext, image_bgr)
    assert ok
    return buf.tobytes()


def collect(source, **kwargs) -> list:
    return list(iter_inputs(source, **kwargs))


# --- numpy --------------------------------------------------------------------------------------


def test_numpy_bgr_passes_through_unchanged():
    image = np.random.default_rng(0).integers(0, 255, (40, 30, 3), dtype=np.uint8)
    [item] = collect(image)
    assert item.input_path is None and item.page_index is None and item.error is None
    np.testing.assert_array_equal(item.image, image)


def test_numpy_gray_and_bgra_become_bgr():
    gray = np.arange(12, dtype=np.uint8).reshape(3, 4) * 20
    [item] = collect(gray)
    assert item.image.shape == (3, 4, 3)
    for channel in range(3):
        np.testing.assert_array_equal(item.image[:, :, channel], gray)
    bgra = np.zeros((5, 6, 4), np.uint8)
    bgra[..., 0], bgra[..., 1], bgra[..., 2], bgra[..., 3] = 10, 20, 30, 0
    [item] = collect(bgra)
    assert item.image.shape == (5, 6, 3)
    assert tuple(item.image[0, 0]) == (10, 20, 30)


@pytest.mark.parametrize(
    "array, words",
    [
        (np.zeros((0, 5, 3), np.uint8), "zero size"),
        (np.zeros((4, 4, 3), np.float32), "uint8"),
        (np.zeros((4, 4, 2), np.uint8), "not an image"),
        (np.zeros(16, np.uint8), "not an image"),
    ],
)
def test_bad_numpy_arrays_raise_at_once(array, words):
    with pytest.raises(InputError, match=words):
        iter_inputs(array)


# --- image files ----------------------------------------------------------------------------------


@pytest.mark.parametrize("photo", SAMPLES, ids=lambda p: p.name)
def test_image_files_decode_like_cv2_imread(photo):
    # str and Path give the same item; pixels are those of PaddleX's cv2.imread
    [by_str] = collect(str(photo))
    [by_path] = collect(photo)
    assert by_str.input_path == by_path.input_path == str(photo)
    assert by_str.page_index is None and by_str.error is None
    expected = cv2.imread(str(photo), cv2.IMREAD_COLOR)
    np.testing.assert_array_equal(by_str.image, expected)
    np.testing.assert_array_equal(by_path.image, expected)


def test_exif_orientation_is_applied_like_imread(tmp_path):
    picture = Image.new("RGB", (40, 20), (0, 0, 0))
    exif = picture.getexif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise when shown
    path = tmp_path / "rotated.jpg"
    picture.save(path, "JPEG", exif=exif.tobytes())
    [item] = collect(path)
    assert item.image.shape == (40, 20, 3) == cv2.imread(str(path)).shape


def test_png_with_alpha_and_gray_png_and_gif(tmp_path):
    rgba = Image.new("RGBA", (8, 6), (255, 0, 0, 128))
    rgba.save(tmp_path / "alpha.png")
    Image.new("L", (8, 6), 77).save(tmp_path / "gray.png")
    Image.new("RGB", (8, 6), (0, 255, 0)).save(tmp_path / "green.gif")
    items = collect(tmp_path)
    by_name = {Path(item.input_path).name: item for item in items}
    assert tuple(by_name["alpha.png"].image[0, 0]) == (0, 0, 255)
    assert tuple(by_name["gray.png"].image[0, 0]) == (77, 77, 77)
    assert tuple(by_name["green.gif"].image[0, 0]) == (0, 255, 0)


def test_missing_file_raises_when_called(tmp_path):
    with pytest.raises(InputError, match="no such file"):
        iter_inputs(str(tmp_path / "nope.jpg"))


def test_truncated_jpeg_is_detected(tmp_path):
    data = PHOTO.read_bytes()
    half = tmp_path / "half.jpg"
    half.write_bytes(data[: len(data) // 2])
    assert cv2.imread(str(half)) is not None  # OpenCV alone would accept it: the check matters
    with pytest.raises(InputError, match="truncated"):
        collect(half)


def test_jpeg_with_trailing_bytes_after_eoi_is_accepted():
    data = PHOTO.read_bytes() + b"trailer appended by some cameras"
    np.testing.assert_array_equal(read_image_bytes(data, "x.jpg"), cv2.imread(str(PHOTO)))


def test_truncated_png_is_detected():
    image = np.random.default_rng(1).integers(0, 255, (64, 64, 3), dtype=np.uint8)
    data = encode(image, ".png")
    np.testing.assert_array_equal(read_image_bytes(data, "ok.png"), image)
    with pytest.raises(InputError, match="truncated"):
        read_image_bytes(data[: len(data) // 2], "half.png")
    with pytest.raises(InputError, match="truncated"):
        read_image_bytes(data[:-12], "no-iend.png")  # IEND chunk cut off


def test_non_image_file_and_empty_file(tmp_path):
    text = tmp_path / "notes.txt"
    text.write_text("not a picture")
    with pytest.raises(InputError, match="not an image"):
        collect(text)
    empty = tmp_path / "empty.png"
    empty.write_bytes(b"")
    with pytest.raises(InputError, match="empty"):
        collect(empty)


def test_too_many_pixels_is_refused_from_the_header():
    # 11000x10000 declared, a few bytes of body: refused before any decoding happens
    with pytest.warns(Image.DecompressionBombWarning):
        with pytest.raises(InputError, match="max_pixels"):
            read_image_bytes(png_bytes(11000, 10000), "bomb.png")
    with pytest.raises(InputError, match="too large"):
        read_image_bytes(png_bytes(30000, 30000), "bigger-bomb.png")
    small = encode(np.zeros((64, 64, 3), np.uint8), ".jpg")
    with pytest.raises(InputError, match="max_pixels"):
        read_image_bytes(small, "small.jpg", max_pixels=64 * 63)
    assert read_image_bytes(small, "small.jpg", max_pixels=64 * 64).shape == (64, 64, 3)


def opencv_only_formats() -> Dict[str, bytes]:
    """Files that this OpenCV decodes (checked here) but that are not on the accepted list."""
    rng = np.random.default_rng(0)
    image = rng.integers(0, 255, (60, 80, 3), dtype=np.uint8)
    files = {ext: encode(image.astype(np.float32) / 255 if ext in (".hdr", ".pfm") else image, ext)
             for ext in (".hdr", ".pfm", ".ppm", ".pam", ".sr", ".jp2")}
    files[".pgm"] = encode(image[:, :, 0], ".pgm")
    for ext, data in files.items():
        assert cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR) is not None, ext
    return files


@pytest.mark.parametrize("ext", [".hdr", ".pfm", ".ppm", ".pgm", ".pam", ".sr", ".jp2"])
def test_only_the_accepted_formats_are_decoded(ext):
    with pytest.raises(InputError, match="not accepted; pass JPEG, PNG, BMP, WebP, TIFF or GIF"):
        read_image_bytes(opencv_only_formats()[ext], f"image{ext}")


@pytest.mark.parametrize("ext", [".jpg", ".png", ".bmp", ".webp", ".tiff"])
def test_every_accepted_format_is_checked_against_max_pixels(ext):
    image = np.zeros((100, 120, 3), np.uint8)
    with pytest.raises(InputError, match="max_pixels=11999"):
        read_image_bytes(encode(image, ext), f"image{ext}", max_pixels=11_999)
    assert read_image_bytes(encode(image, ext), f"image{ext}", max_pixels=12_000).shape == (100, 120, 3)


def test_zero_size_image():
    with pytest.raises(InputError, match="zero"):
        read_image_bytes(png_bytes(0, 10), "zero.png")


# --- PDF -------------------------------------------------------------------------------------------


def test_pdf_gives_one_bgr_item_per_page(tmp_path):
    pdf = tmp_path / "two.pdf"
    make_pdf(pdf)
    items = iter_inputs(pdf)
    assert isinstance(items, types.GeneratorType)
    first, second = list(items)
    assert (first.input_path, first.page_index) == (str(pdf), 0)
    assert (second.input_path, second.page_index) == (str(pdf), 1)
    assert first.image.shape == (50 * PDF_RENDER_SCALE, 100 * PDF_RENDER_SCALE, 3)
    assert second.image.shape == (80 * PDF_RENDER_SCALE, 60 * PDF_RENDER_SCALE, 3)
    assert first.image.dtype == np.uint8
    b, g, r = first.image[50, 100].astype(int)
    assert r > 240 and g < 15 and b < 15, "page 1 is red: BGR order"
    b, g, r = second.image[80, 60].astype(int)
    assert b > 240 and g < 15 and r < 15, "page 2 is blue"


def test_pdf_page_over_max_pixels_and_damaged_pdf(tmp_path):
    pdf = tmp_path / "two.pdf"
    make_pdf(pdf)
    with pytest.raises(InputError, match="page 0 renders to 200x100"):
        collect(pdf, max_pixels=10_000)
    broken = tmp_path / "broken.pdf"
    broken.write_bytes(pdf.read_bytes()[:200])
    with pytest.raises(InputError, match="not a readable PDF"):
        collect(broken)


# --- directories and lists ----------------------------------------------------------------------------


@pytest.fixture
def mixed_dir(tmp_path) -> Path:
    folder = tmp_path / "mixed"
    folder.mkdir()
    shutil.copy(PHOTO, folder / "a.jpg")
    Image.new("RGB", (16, 12), (1, 2, 3)).save(folder / "b.png")
    make_pdf(folder / "c.pdf")
    (folder / "d_broken.jpg").write_text("this is not a JPEG")
    (folder / "e_notes.txt").write_text("skipped: not an image suffix")
    (folder / "sub").mkdir()  # not recursed into
    Image.new("RGB", (4, 4)).save(folder / "sub" / "inner.png")
    return folder


def test_directory_items_in_order_bad_file_becomes_an_error_item(mixed_dir):
    items = collect(mixed_dir)
    assert [(Path(i.input_path).name, i.page_index) for i in items] == [
        ("a.jpg", None),
        ("b.png", None),
        ("c.pdf", 0),
        ("c.pdf", 1),
        ("d_broken.jpg", None),
    ]
    assert all(i.error is None and i.image is not None for i in items[:4])
    broken = items[4]
    assert broken.image is None and isinstance(broken.error, InputError)
    assert "d_broken.jpg" in str(broken.error) and "not an image" in str(broken.error)


def test_directory_strict_raises_at_the_first_bad_file(mixed_dir):
    items = iter_inputs(mixed_dir, strict=True)
    for _ in range(4):
        assert next(items).error is None
    with pytest.raises(InputError, match="d_broken.jpg"):
        next(items)


def test_empty_directory_and_directory_without_images(tmp_path):
    with pytest.raises(InputError, match="empty"):
        iter_inputs(tmp_path)
    (tmp_path / "readme.txt").write_text("hello")
    with pytest.raises(InputError, match="no images"):
        iter_inputs(tmp_path)


def test_list_mixes_kinds_and_is_lazy(tmp_path):
    image = np.full((8, 8, 3), 9, np.uint8)
    later = tmp_path / "later.png"
    Image.new("RGB", (5, 5)).save(later)
    items = iter_inputs([image, PHOTO, str(tmp_path / "missing.jpg"), later])
    assert next(items).input_path is None
    assert next(items).input_path == str(PHOTO)
    missing = next(items)
    assert missing.error is not None and "no such file" in missing.error.reason
    later.unlink()  # not read yet: a lazy reader notices
    gone = next(items)
    assert gone.input_path == str(later) and gone.error is not None
    with pytest.raises(StopIteration):
        next(items)


def test_list_strict_and_empty_list(tmp_path):
    with pytest.raises(InputError, match="no such file"):
        collect([PHOTO, tmp_path / "missing.jpg"], strict=True)
    with pytest.raises(InputError, match="empty"):
        iter_inputs([])
    with pytest.raises(InputError, match="unsupported input type"):
        iter_inputs({"not": "an input"})


# --- video and camera ----------------------------------------------------------------------------------


def test_video_frames_with_their_index(tmp_path):
    path = tmp_path / "clip.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10, (64, 48))
    assert writer.isOpened()
    levels = [0, 60, 120, 180, 240]
    for level in levels:
        writer.write(np.full((48, 64, 3), level, np.uint8))
    writer.release()
    items = collect(path)
    assert [i.page_index for i in items] == list(range(len(levels)))
    assert all(i.input_path == str(path) and i.image.shape == (48, 64, 3) for i in items)
    for item, level in zip(items, levels):
        assert abs(float(item.image.mean()) - level) < 4


def test_damaged_video_is_an_input_error(tmp_path):
    path = tmp_path / "fake.mp4"
    path.write_bytes(b"\x00" * 1000)
    with pytest.raises(InputError, match="video"):
        collect(path)


@pytest.mark.parametrize("camera", [97, "97"])
def test_missing_camera_is_an_input_error(camera):
    with pytest.raises(InputError, match="camera 97 cannot be opened"):
        collect(camera)
    [item] = collect([camera])
    assert item.error is not None and item.image is None


# --- URLs -----------------------------------------------------------------------------------------------


class _Handler(BaseHTTPRequestHandler):
    routes: Dict[str, Tuple[int, bytes]] = {}
    release = threading.Event()

    def do_GET(self) -> None:  # noqa: N802 (http.server's name)
        if self.path == "/slow":
            self.release.wait(5)  # longer than the client's timeout
        if self.path == "/redirect":
            self.send_response(302)
            self.send_header("Location", "/photo.jpg")
            self.end_headers()
            return
        if self.path in ("/trickle-body", "/trickle-head"):  # a byte every 0.25 s, 40 at most
            try:
                if self.path == "/trickle-body":
                    self.send_response(200)
                    self.send_header("Content-Length", "1000")
                    self.end_headers()
                    payload = b"x" * 40
                else:
                    payload = b"HTTP/1.0 200 OK\r\nX-Slow: " + b"y" * 40
                for byte in payload:
                    self.wfile.write(bytes([byte]))
                    self.wfile.flush()
                    time.sleep(0.25)
            except OSError:  # the client gave up
                pass
            return
        if self.path == "/chunked-big":  # no Content-Length: the limit is enforced while reading
            self.send_response(200)
            self.end_headers()
            for _ in range(40):
                self.wfile.write(b"x" * 1024)
            return
        status, body = self.routes.get(self.path, (404, b"not found"))
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args) -> None:
        pass


@pytest.fixture(scope="module")
def server(tmp_path_factory) -> Iterator[str]:
    pdf = tmp_path_factory.mktemp("served") / "doc.pdf"
    make_pdf(pdf)
    _Handler.routes = {
        "/photo.jpg": (200, PHOTO.read_bytes()),
        "/doc.pdf": (200, pdf.read_bytes()),
        "/notes.txt": (200, b"just text"),
        "/slow": (200, PHOTO.read_bytes()),
    }
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    _Handler.release.set()
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture(autouse=True)
def _no_proxy_for_loopback(monkeypatch):
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")


def test_url_image_and_redirect(server):
    [item] = collect(f"{server}/photo.jpg")
    assert item.input_path == f"{server}/photo.jpg" and item.page_index is None
    np.testing.assert_array_equal(item.image, cv2.imread(str(PHOTO)))
    [redirected] = collect(f"{server}/redirect")
    np.testing.assert_array_equal(redirected.image, item.image)


def test_url_pdf_gives_pages(server):
    items = collect(f"{server}/doc.pdf")
    assert [i.page_index for i in items] == [0, 1]


def test_url_failures(server):
    with pytest.raises(InputError, match="HTTP 404"):
        collect(f"{server}/missing.jpg")
    with pytest.raises(InputError, match="more than the limit of 1000 bytes"):
        collect(f"{server}/photo.jpg", url_max_bytes=1000)
    with pytest.raises(InputError, match="larger than the limit"):
        fetch_url(f"{server}/chunked-big", timeout=5, max_bytes=10_000)
    with pytest.raises(InputError, match="within 0.5 s"):
        collect(f"{server}/slow", url_timeout=0.5)
    with pytest.raises(InputError, match="not an image"):
        collect(f"{server}/notes.txt")


def test_url_in_a_list_fails_alone(server):
    items = collect([f"{server}/missing.jpg", f"{server}/photo.jpg"])
    assert items[0].error is not None and "404" in items[0].error.reason
    assert items[1].error is None


@pytest.mark.parametrize("url", ["ftp://127.0.0.1/a.jpg", "file:///etc/hostname", "gopher://x/y"])
def test_only_http_and_https_schemes(url):
    with pytest.raises(InputError, match="only http:// and https://"):
        iter_inputs(url)
    with pytest.raises(InputError, match="only http:// and https://"):
        fetch_url(url, timeout=1, max_bytes=100)


def test_private_hosts_refused_when_asked(server):
    assert fetch_url(f"{server}/photo.jpg", timeout=5, max_bytes=10**7) == PHOTO.read_bytes()
    with pytest.raises(InputError, match="non-public address"):
        fetch_url(f"{server}/photo.jpg", timeout=5, max_bytes=10**7, allow_private=False)
    port = server.rsplit(":", 1)[1]
    with pytest.raises(InputError, match="non-public address"):
        fetch_url(f"http://localhost:{port}/photo.jpg", timeout=5, max_bytes=10**7, allow_private=False)
    for address in ("10.1.2.3", "169.254.169.254", "[::1]", "0.0.0.0"):
        with pytest.raises(InputError, match="non-public address"):
            fetch_url(f"http://{address}/x.jpg", timeout=1, max_bytes=100, allow_private=False)


@pytest.mark.parametrize("path", ["/trickle-body", "/trickle-head"])
def test_url_timeout_is_a_total_deadline(server, path):
    """Each byte comes well within the timeout, but the whole answer would take 10 s."""
    started = time.monotonic()
    with pytest.raises(InputError, match="within 1 s"):
        fetch_url(server + path, timeout=1, max_bytes=10**6)
    assert time.monotonic() - started < 8


@pytest.mark.parametrize("url", ["http://[::1/x.jpg", "http://127.0.0.1:99999/x.jpg", "http://127.0.0.1:abc/x.jpg",
                                 f"http://{'a' * 64}.example/x.jpg", "http://" + "a." * 130 + "example/x.jpg"])
def test_malformed_urls_are_input_errors(url):
    with pytest.raises(InputError, match="malformed|host name"):
        iter_inputs(url)
    with pytest.raises(InputError, match="malformed|host name"):
        fetch_url(url, timeout=1, max_bytes=100, allow_private=False)
    [item] = collect([url])
    assert item.error is not None


EMBEDDED_PRIVATE = [
    ("NAT64 of 127.0.0.1", "64:ff9b::7f00:1"),
    ("NAT64 of 10.0.0.1", "64:ff9b::a00:1"),
    ("NAT64 local-use prefix", "64:ff9b:1::808:808"),
    ("6to4 of 127.0.0.1", "2002:7f00:1::1"),
    ("6to4 of 169.254.169.254", "2002:a9fe:a9fe::1"),
    ("IPv4-compatible 127.0.0.1", "::7f00:1"),
    ("IPv4-compatible 192.168.1.1", "::c0a8:101"),
    ("Teredo, client 127.0.0.1", "2001:0:4136:e378:8000:63bf:80ff:fffe"),
]


@pytest.mark.parametrize("address", [a for _, a in EMBEDDED_PRIVATE], ids=[n for n, _ in EMBEDDED_PRIVATE])
def test_ipv6_addresses_are_judged_by_the_ipv4_they_embed(address):
    import ipaddress

    assert not is_public_address(ipaddress.ip_address(address))
    with pytest.raises(InputError, match="non-public address"):  # refused before anything is sent
        fetch_url(f"http://[{address}]/x.jpg", timeout=1, max_bytes=100, allow_private=False)


def test_public_addresses_stay_public():
    import ipaddress

    for address in ("8.8.8.8", "2606:4700:4700::1111", "64:ff9b::808:808", "2002:808:808::1"):
        assert is_public_address(ipaddress.ip_address(address)), address


def test_input_item_is_the_documented_dataclass():
    item = InputItem("x.jpg", None, np.zeros((1, 1, 3), np.uint8))
    assert item.error is None
