"""Input readers: turn whatever the user passes to ``predict`` into BGR images, lazily.

Accepted sources (PaddleX's ``predict(input=...)`` plus video and cameras):

* a numpy array, taken to be BGR as in PaddleX (HxW gray and HxWx4 BGRA are converted);
* a path (``str`` / ``Path``) to an image, a PDF (one item per page, rendered with pypdfium2 at
  ``PDF_RENDER_SCALE`` = 2.0, i.e. 144 DPI, PaddleX's zoom) or a video file (one item per frame);
* an ``http://`` / ``https://`` URL of an image or a PDF (other schemes are refused);
* a directory: its images and PDFs, sorted by name, not recursive (other files are skipped);
* a camera index (``int`` or a string of digits that is not an existing path);
* a list / tuple of any of these.

Images are decoded with ``cv2.imdecode`` (EXIF orientation applied, gray/alpha dropped to BGR),
which gives the same pixels as PaddleX's ``cv2.imread``. Before decoding, the header is read
with PIL: only JPEG, PNG, BMP, WebP, TIFF and GIF are accepted (OpenCV would decode others,
e.g. Radiance HDR, without a size check), decompression bombs are refused (``max_pixels``), and
the file is checked for truncation, because OpenCV silently returns a half-grey picture for a
JPEG cut in half.

Errors are :class:`edge.errors.InputError`. In a list or a directory a bad element becomes an
:class:`InputItem` with ``error`` set and iteration goes on (``strict=True`` raises instead);
a single top-level source that is bad raises. Cheap checks of the top-level source (missing
path, bad URL scheme, empty directory, unknown type) raise when ``iter_inputs`` is called.
"""
from __future__ import annotations

import io
import logging
import os
import re
import struct
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator, List, Optional, Union

import cv2
import numpy as np
from PIL import Image

from .errors import InputError, describe_source
from .fetch import check_url, fetch_url

logger = logging.getLogger(__name__)

# PIL's names of the formats that are decoded (MPO: a JPEG with extra pictures, as cameras write)
ACCEPTED_FORMATS = frozenset({"JPEG", "MPO", "PNG", "BMP", "WEBP", "TIFF", "GIF"})
ACCEPTED_NAMES = "JPEG, PNG, BMP, WebP, TIFF or GIF"
IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff", ".gif"})
PDF_SUFFIXES = frozenset({".pdf"})
VIDEO_SUFFIXES = frozenset({".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".flv", ".wmv", ".mpg", ".mpeg", ".ts"})
PDF_RENDER_SCALE = 2.0  # pixels per PDF point: 144 DPI, as PaddleX's PDFReader (zoom=2.0)
DEFAULT_MAX_PIXELS = 100_000_000

_SCHEME_RE = re.compile(r"^([A-Za-z][A-Za-z0-9+.\-]*)://")
# PDFium is not thread-safe; every call into it holds this lock (never across a yield).
_PDFIUM_LOCK = threading.Lock()


@dataclass
class InputItem:
    input_path: Optional[str]  # None for a numpy input; path, URL or "camera_<i>" otherwise
    page_index: Optional[int]  # PDF page (0-based) or video frame index; None otherwise
    image: Optional[np.ndarray]  # BGR uint8 HxWx3; None when error is set
    error: Optional[InputError] = None


Source = Union[np.ndarray, str, Path, int, list, tuple]


def iter_inputs(
    source: Source,
    *,
    url_timeout: float = 10.0,
    url_max_bytes: int = 50 * 2**20,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    strict: bool = False,
) -> Iterator[InputItem]:
    """Yield one :class:`InputItem` per image, PDF page or video frame of ``source``, lazily."""
    opts = _Options(url_timeout, url_max_bytes, max_pixels)
    if isinstance(source, (list, tuple)):
        if len(source) == 0:
            raise InputError(source, "the input list is empty; pass at least one image, path or URL")
        return _iter_many(list(source), opts, strict)
    reader = _reader_for(source, opts)  # raises now for a missing path, bad scheme, ...
    if isinstance(reader, list):  # a directory
        return _iter_many(reader, opts, strict)
    return reader()


# ---------------------------------------------------------------------------------------------
# dispatch


@dataclass(frozen=True)
class _Options:
    url_timeout: float
    url_max_bytes: int
    max_pixels: int


def _reader_for(source: Any, opts: _Options) -> Union[Callable[[], Iterator[InputItem]], List[Path]]:
    """Check ``source`` cheaply and return a generator factory, or a directory's file list."""
    if isinstance(source, np.ndarray):
        image = _array_to_bgr(source)
        return lambda: iter([InputItem(None, None, image)])
    if isinstance(source, bool):
        raise InputError(source, "a bool is not an input; pass an image, path, URL or camera index")
    if isinstance(source, (int, np.integer)):
        return lambda: _iter_capture(int(source), f"camera_{int(source)}", opts, camera=True)
    if isinstance(source, Path):
        source = str(source)
    if isinstance(source, str) and not source.strip():
        raise InputError(source, "the input is an empty string; pass an image, a path, a URL or a directory")
    if not isinstance(source, str):
        raise InputError(
            source,
            f"unsupported input type {type(source).__name__}; pass a numpy array, a path, a URL, "
            "a directory, a camera index or a list of these",
        )
    scheme = _SCHEME_RE.match(source)
    if scheme:
        check_url(source)
        return lambda: _iter_url(source, opts)
    path = Path(source).expanduser()
    if not path.exists():
        if source.strip().isdigit():
            index = int(source)
            return lambda: _iter_capture(index, f"camera_{index}", opts, camera=True)
        raise InputError(source, "no such file or directory; check the path")
    if path.is_dir():
        return _list_directory(path)
    if not os.access(path, os.R_OK):
        raise InputError(source, "the file is not readable (permission denied)")
    suffix = path.suffix.lower()
    if suffix in VIDEO_SUFFIXES:
        return lambda: _iter_capture(str(path), source, opts, camera=False)
    return lambda: _iter_file(path, source, opts)


def _iter_many(sources: list, opts: _Options, strict: bool) -> Iterator[InputItem]:
    """Each element in turn; a failing element becomes an error item unless ``strict``."""
    for element in sources:
        label = None if isinstance(element, np.ndarray) else (
            str(element) if isinstance(element, (str, Path, int)) else describe_source(element))
        try:
            if isinstance(element, (list, tuple)):
                raise InputError(element, "nested lists are not supported; flatten the input list")
            reader = _reader_for(element, opts)
            if isinstance(reader, list):
                yield from _iter_many(reader, opts, strict)
            else:
                yield from reader()
        except InputError as err:
            if strict:
                raise
            yield InputItem(label, None, None, err)  # the consumer reports it (once)


def _list_directory(path: Path) -> List[Path]:
    files = sorted(p for p in path.iterdir() if p.is_file() and not p.name.startswith("."))
    if not files:
        raise InputError(str(path), "the directory is empty; put images or PDFs in it")
    wanted = [p for p in files if p.suffix.lower() in IMAGE_SUFFIXES | PDF_SUFFIXES]
    skipped = len(files) - len(wanted)
    if skipped:
        logger.info("%s: skipping %d file(s) that are not images or PDFs", path, skipped)
    if not wanted:
        raise InputError(
            str(path),
            f"the directory has no images or PDFs (looked for {', '.join(sorted(IMAGE_SUFFIXES | PDF_SUFFIXES))})",
        )
    return wanted


# ---------------------------------------------------------------------------------------------
# numpy arrays and encoded images


def _array_to_bgr(array: np.ndarray) -> np.ndarray:
    if array.dtype != np.uint8:
        raise InputError("<numpy array>", f"dtype is {array.dtype}; convert the image to uint8 (0..255)")
    if array.size == 0:
        raise InputError("<numpy array>", f"the image has zero size (shape {array.shape})")
    if array.ndim == 2 or (array.ndim == 3 and array.shape[2] == 1):
        return cv2.cvtColor(array.reshape(array.shape[:2]), cv2.COLOR_GRAY2BGR)
    if array.ndim == 3 and array.shape[2] == 3:
        return np.ascontiguousarray(array)
    if array.ndim == 3 and array.shape[2] == 4:
        return cv2.cvtColor(array, cv2.COLOR_BGRA2BGR)
    raise InputError("<numpy array>", f"shape {array.shape} is not an image; expected HxW, HxWx3 (BGR) or HxWx4")


def read_image_bytes(data: bytes, source: str, *, max_pixels: int = DEFAULT_MAX_PIXELS) -> np.ndarray:
    """Decode an encoded image (JPEG, PNG, BMP, WebP, TIFF, GIF) to BGR uint8, safely.

    The format and the size come from the file's header (PIL reads it without decoding) before
    anything is decoded: other formats that OpenCV would decode blindly (Radiance HDR, PFM,
    PNM, PAM, Sun raster, JPEG 2000, OpenEXR, ...) are refused, and so are images over
    ``max_pixels``.
    """
    if not data:
        raise InputError(source, "the file is empty (0 bytes)")
    try:
        header = Image.open(io.BytesIO(data))
    except Image.DecompressionBombError as err:
        raise InputError(source, f"the image is too large to decode safely ({err})") from None
    except Exception:  # PIL does not know it: OpenCV might (.hdr, .pfm, .exr), but it is not accepted
        if _declared_size(data) == "zero":
            raise InputError(source, "the image has zero width or height; the file is damaged") from None
        raise InputError(source, f"not an image file, or a format that is not accepted; pass {ACCEPTED_NAMES}") from None
    if header.format not in ACCEPTED_FORMATS:
        raise InputError(source, f"{header.format} images are not accepted; pass {ACCEPTED_NAMES}")
    width, height = header.size
    if width <= 0 or height <= 0:
        raise InputError(source, f"the image has zero size ({width}x{height})")
    if width * height > max_pixels:
        raise InputError(
            source,
            f"the image is {width}x{height} = {width * height} pixels, more than max_pixels="
            f"{max_pixels}; downscale it or raise max_pixels",
        )
    _check_complete(header, data, source)
    image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    if image is None:  # e.g. GIF, which this OpenCV cannot decode
        try:
            image = cv2.cvtColor(np.asarray(Image.open(io.BytesIO(data)).convert("RGB")), cv2.COLOR_RGB2BGR)
        except Exception as err:
            raise InputError(source, f"the image cannot be decoded ({err})") from None
    if image.size == 0:
        raise InputError(source, "the image has zero size")
    if image.shape[0] * image.shape[1] > max_pixels:
        raise InputError(source, f"the image has {image.shape[0] * image.shape[1]} pixels, more than max_pixels={max_pixels}")
    return image


def _declared_size(data: bytes) -> Optional[str]:
    """'zero' when a PNG, GIF or BMP header declares a zero width or height (PIL refuses those)."""
    if data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) >= 24:
        width, height = struct.unpack(">II", data[16:24])
    elif data[:4] in (b"GIF8",) and len(data) >= 10:
        width, height = struct.unpack("<HH", data[6:10])
    elif data[:2] == b"BM" and len(data) >= 26:
        width, height = struct.unpack("<ii", data[18:26])
    else:
        return None
    return "zero" if width == 0 or height == 0 else None


def _check_complete(header: Image.Image, data: bytes, source: str) -> None:
    """Refuse truncated files: OpenCV decodes a cut JPEG to a partly grey picture without error."""
    fmt = header.format
    try:
        if fmt == "PNG":
            header.verify()  # walks every chunk and checks its CRC, no decompression
            return
        if fmt in ("JPEG", "MPO") and data.rstrip(b"\x00\r\n ").endswith(b"\xff\xd9"):
            return  # ends with the EOI marker: complete (fast path, no second decode)
        # JPEG without EOI at the end (trailing data or truncated) and other formats: full decode
        Image.open(io.BytesIO(data)).load()
    except Exception as err:
        raise InputError(source, f"the image file is truncated or corrupt ({err}); re-download or re-export it") from None


def _iter_file(path: Path, label: str, opts: _Options) -> Iterator[InputItem]:
    try:
        data = path.read_bytes()
    except OSError as err:
        raise InputError(label, f"cannot read the file ({err.strerror or err})") from None
    if data[:5] == b"%PDF-" or path.suffix.lower() in PDF_SUFFIXES:
        yield from _iter_pdf(data, label, opts)
        return
    yield InputItem(label, None, read_image_bytes(data, label, max_pixels=opts.max_pixels))


# ---------------------------------------------------------------------------------------------
# PDF


def _iter_pdf(data: bytes, label: str, opts: _Options) -> Iterator[InputItem]:
    """One BGR image per page, rendered one page at a time at ``PDF_RENDER_SCALE``."""
    import pypdfium2 as pdfium

    with _PDFIUM_LOCK:
        try:
            document = pdfium.PdfDocument(data)
            page_count = len(document)
        except Exception as err:
            raise InputError(label, f"not a readable PDF ({err}); check that it is not damaged or password-protected") from None
    try:
        if page_count == 0:
            raise InputError(label, "the PDF has no pages")
        for index in range(page_count):
            yield InputItem(label, index, _render_page(document, index, label, opts))
    finally:
        with _PDFIUM_LOCK:
            document.close()


def _render_page(document: Any, index: int, label: str, opts: _Options) -> np.ndarray:
    with _PDFIUM_LOCK:
        page = document[index]
        try:
            width_pt, height_pt = page.get_size()
            width, height = round(width_pt * PDF_RENDER_SCALE), round(height_pt * PDF_RENDER_SCALE)
            if width <= 0 or height <= 0:
                raise InputError(label, f"page {index} has zero size")
            if width * height > opts.max_pixels:
                raise InputError(
                    label, f"page {index} renders to {width}x{height} pixels, more than max_pixels={opts.max_pixels}"
                )
            bitmap = page.render(scale=PDF_RENDER_SCALE)  # PDFium's native BGR(x) byte order
            array = bitmap.to_numpy()
        except InputError:
            raise
        except Exception as err:
            raise InputError(label, f"page {index} cannot be rendered ({err})") from None
        finally:
            page.close()
    if array.ndim == 3 and array.shape[2] == 4:
        return cv2.cvtColor(array, cv2.COLOR_BGRA2BGR)
    if array.ndim == 2:
        return cv2.cvtColor(array, cv2.COLOR_GRAY2BGR)
    return np.ascontiguousarray(array[:, :, :3])


# ---------------------------------------------------------------------------------------------
# video files and cameras


def _iter_capture(target: Union[int, str], label: str, opts: _Options, *, camera: bool) -> Iterator[InputItem]:
    """One item per frame, read one at a time; ends when the stream does."""
    capture = cv2.VideoCapture(target)
    try:
        if not capture.isOpened():
            if camera:
                raise InputError(label, f"camera {target} cannot be opened: no such device, or it is busy")
            raise InputError(label, "the video cannot be opened: not a video, or a codec OpenCV lacks")
        width = int(capture.get(cv2.CAP_PROP_FRAME_WIDTH))
        height = int(capture.get(cv2.CAP_PROP_FRAME_HEIGHT))
        if width * height > opts.max_pixels:
            raise InputError(label, f"frames are {width}x{height}, more than max_pixels={opts.max_pixels}")
        frame_index = 0
        while True:
            ok, frame = capture.read()
            if not ok or frame is None:
                break
            yield InputItem(label, frame_index, _array_to_bgr(frame))
            frame_index += 1
        if frame_index == 0:
            raise InputError(label, "no frame could be read" + ("" if camera else "; the video may be empty or damaged"))
    finally:
        capture.release()


# ---------------------------------------------------------------------------------------------
# URLs (fetched by edge.fetch)


def _iter_url(url: str, opts: _Options) -> Iterator[InputItem]:
    data = fetch_url(url, timeout=opts.url_timeout, max_bytes=opts.url_max_bytes)
    if data[:5] == b"%PDF-":
        yield from _iter_pdf(data, url, opts)
        return
    yield InputItem(url, None, read_image_bytes(data, url, max_pixels=opts.max_pixels))
