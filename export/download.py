"""The source stage for zoo names: download official archives / weights into a cache, safely.

Public functions
----------------
``fetch(url, cache_dir, *, expected_sha256=None, progress=True, timeout=30.0, retries=2) -> Path``
    Download ``url`` to ``cache_dir/<basename>`` and return that path. A finished file is a cache
    hit. A transfer that stops midway leaves ``<basename>.part``; the next attempt (an automatic
    retry, or a later call) resumes it with an HTTP ``Range`` request. The first complete download
    records its sha256 in ``<basename>.sha256``; every later use re-hashes the file and compares
    (trust on first use). ``expected_sha256`` pins the hash up front. A mismatch removes the bad
    file and raises :class:`ExportError`.
``fetch_model(name, kind="inference", cache_dir=None, *, mirror=None, progress=True) -> Path``
    A zoo model (edge/zoo.py): ``kind="inference"`` downloads ``<name>_infer.tar`` into
    ``<cache>/downloads/`` and returns the extracted ``<cache>/official/<name>_infer/`` directory,
    where the runtime looks for it (edge/cache.py); ``kind="pretrained"`` returns the
    ``<cache>/downloads/<name>_pretrained.pdparams`` file. ``cache_dir`` is the cache root
    (default ``$EDGE_CACHE`` or ``~/.cache/paddlex-edge``). ``mirror`` (or ``$EDGE_MODEL_MIRROR``)
    replaces the scheme and host of the official URL, for hosts that cannot reach it.
``extract_tar(archive, target) -> Path``
    Extract a tar whose members sit under one top-level directory into ``target`` (that
    directory's contents), refusing absolute paths, ``..`` components, links and device files.
    Atomic (edge.files.publishing): ``target`` appears complete or not at all.

Every failure is an :class:`edge.errors.ExportError` whose message names the URL or file and,
for network failures, the way out: ``--model-dir DIR`` or ``--weights FILE.pdparams``.
"""
from __future__ import annotations

import logging
import os
import shutil
import tarfile
from pathlib import Path, PurePosixPath
from typing import Optional
from urllib.parse import urlsplit

import requests

from edge import cache
from edge.errors import ExportError
from edge.files import publishing, sha256_file
from edge.inference_dir import is_inference_dir
from edge.zoo import get_model

logger = logging.getLogger(__name__)

CHUNK_SIZE = 1 << 20
# Small network reads: a dropped connection loses at most one unwritten chunk of progress.
NET_CHUNK_SIZE = 1 << 16
DEFAULT_TIMEOUT_S = 30.0
OFFLINE_HINT = (
    "to export without network access, pass a local inference directory with `--model-dir DIR` "
    "or fine-tuned weights with `--weights FILE.pdparams`"
)


class _TransferInterrupted(Exception):
    """The connection dropped midway; the `.part` file holds what arrived."""


def _sidecar(path: Path) -> Path:
    return path.with_name(path.name + ".sha256")


def _recorded_sha256(path: Path) -> Optional[str]:
    side = _sidecar(path)
    if not side.exists():
        return None
    text = side.read_text(encoding="ascii").split()
    return text[0].lower() if text else None


def _check_digest(path: Path, actual: str, expected: Optional[str], url: str, what: str) -> None:
    if expected is not None and actual != expected.lower():
        path.unlink(missing_ok=True)
        raise ExportError(
            f"{path.name} from {url}: sha256 {actual} does not match the {what} {expected}; the file is "
            f"not trusted and was removed. Run again to download it anew, or delete {_sidecar(path)} "
            "if the published file really changed."
        )


def fetch(
    url: str,
    cache_dir: Path,
    *,
    expected_sha256: Optional[str] = None,
    progress: bool = True,
    timeout: float = DEFAULT_TIMEOUT_S,
    retries: int = 2,
) -> Path:
    """Download `url` into `cache_dir` (cached, resumable, checksummed); see the module docstring."""
    name = PurePosixPath(urlsplit(url).path).name
    if not name:
        raise ExportError(f"cannot download {url!r}: the URL names no file")
    cache_dir = Path(cache_dir)
    try:
        cache_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ExportError(f"cannot create the download cache {cache_dir}: {exc}; set $EDGE_CACHE to a writable directory") from None
    dest = cache_dir / name
    recorded = _recorded_sha256(dest)

    if dest.exists():
        actual = sha256_file(dest)
        _check_digest(dest, actual, recorded, url, f"sha256 recorded on first download in {_sidecar(dest)}")
        _check_digest(dest, actual, expected_sha256, url, "expected sha256")
        if recorded is None:
            _sidecar(dest).write_text(actual + "\n", encoding="ascii")
        logger.info("using cached %s", dest)
        return dest

    part = dest.with_name(name + ".part")
    for attempt in range(retries + 1):
        try:
            _download_to_part(url, part, timeout=timeout, progress=progress)
            break
        except _TransferInterrupted as exc:
            if attempt == retries:
                raise ExportError(
                    f"download of {url} was interrupted ({exc}); {part.stat().st_size if part.exists() else 0} bytes "
                    f"are kept in {part} and the next run resumes from there. {OFFLINE_HINT}"
                ) from None
            logger.warning("download of %s interrupted (%s); resuming (attempt %d of %d)", url, exc, attempt + 2, retries + 1)

    actual = sha256_file(part)
    _check_digest(part, actual, expected_sha256, url, "expected sha256")
    _check_digest(part, actual, recorded, url, f"sha256 recorded on first download in {_sidecar(dest)}")
    _sidecar(dest).write_text(actual + "\n", encoding="ascii")
    os.replace(part, dest)
    logger.info("downloaded %s (%d bytes, sha256 %s)", dest, dest.stat().st_size, actual)
    return dest


def _download_to_part(url: str, part: Path, *, timeout: float, progress: bool) -> None:
    """Append the missing bytes of `url` to `part`; raises _TransferInterrupted or ExportError."""
    have = part.stat().st_size if part.exists() else 0
    headers = {"Range": f"bytes={have}-"} if have else {}
    try:
        response = requests.get(url, headers=headers, stream=True, timeout=timeout)
    except (requests.ConnectionError, requests.Timeout) as exc:
        raise ExportError(f"cannot reach {url}: {type(exc).__name__}; you may be offline. {OFFLINE_HINT}") from None
    except requests.RequestException as exc:
        raise ExportError(f"cannot download {url}: {exc}. {OFFLINE_HINT}") from None

    with response:
        if response.status_code == 416 and have:
            # The range starts at or past the end: `.part` may already be whole, or be stale junk.
            total = _total_from_content_range(response.headers.get("Content-Range"))
            if total == have:
                return
            part.unlink()
            raise _TransferInterrupted("the server rejected the resume range; starting over")
        if response.status_code == 404:
            raise ExportError(f"{url} was not found on the server (HTTP 404): check the model name. {OFFLINE_HINT}")
        if response.status_code >= 400:
            raise ExportError(f"downloading {url} failed with HTTP {response.status_code} {response.reason}. {OFFLINE_HINT}")

        if response.status_code == 206:
            start = _start_from_content_range(response.headers.get("Content-Range"))
            if start != have:
                part.unlink()
                raise _TransferInterrupted(f"the server resumed at byte {start}, not {have}; starting over")
            mode = "ab"
        else:  # 200: the server ignored Range (or there was nothing to resume)
            have, mode = 0, "wb"
        length = response.headers.get("Content-Length")
        total = have + int(length) if length is not None else None
        logger.info("downloading %s (%s bytes%s)", url, total if total is not None else "unknown",
                    f", resuming at byte {have}" if have else "")
        bar = _progress_bar(part.name[: -len(".part")], total, have) if progress else None
        received = have
        try:
            with open(part, mode) as f:
                for chunk in response.iter_content(chunk_size=NET_CHUNK_SIZE):
                    f.write(chunk)
                    received += len(chunk)
                    if bar is not None:
                        bar.update(len(chunk))
        except (requests.ConnectionError, requests.Timeout, requests.exceptions.ChunkedEncodingError) as exc:
            raise _TransferInterrupted(type(exc).__name__) from None
        finally:
            if bar is not None:
                bar.close()
        if total is not None and received < total:
            raise _TransferInterrupted(f"got {received} of {total} bytes")


def _start_from_content_range(value: Optional[str]) -> Optional[int]:
    # "bytes 100-999/1000"
    try:
        return int(value.split()[1].split("-")[0]) if value else None
    except (IndexError, ValueError):
        return None


def _total_from_content_range(value: Optional[str]) -> Optional[int]:
    # "bytes */1000"
    try:
        return int(value.rsplit("/", 1)[1]) if value else None
    except (IndexError, ValueError):
        return None


def _progress_bar(name: str, total: Optional[int], initial: int):
    from tqdm import tqdm

    return tqdm(total=total, initial=initial, unit="B", unit_scale=True, unit_divisor=1024, desc=name, leave=False)


# ---------------------------------------------------------------------------------------- archives
def _check_member(member: tarfile.TarInfo, archive: Path) -> None:
    path = PurePosixPath(member.name)
    if path.is_absolute() or ".." in path.parts or member.name.startswith(("/", "\\")) or "\\" in member.name:
        raise ExportError(f"{archive}: member {member.name!r} would be written outside the target directory; refusing the archive")
    if not (member.isfile() or member.isdir()):
        raise ExportError(f"{archive}: member {member.name!r} is a link or special file; refusing the archive")


def extract_tar(archive: Path, target: Path) -> Path:
    """Safely extract `archive`'s single top-level directory as `target`; returns `target`."""
    archive, target = Path(archive), Path(target)
    try:
        with tarfile.open(archive) as tar:
            members = tar.getmembers()
            for member in members:
                _check_member(member, archive)
            tops = {PurePosixPath(m.name).parts[0] for m in members if PurePosixPath(m.name).parts}
            if len(tops) != 1:
                raise ExportError(f"{archive}: expected one top-level directory, found {sorted(tops)[:5]}")
            with publishing(target) as staging:
                for member in members:
                    parts = PurePosixPath(member.name).parts[1:]
                    out = staging.joinpath(*parts) if parts else staging
                    if member.isdir():
                        out.mkdir(parents=True, exist_ok=True)
                        continue
                    out.parent.mkdir(parents=True, exist_ok=True)
                    with tar.extractfile(member) as src, open(out, "wb") as dst:
                        shutil.copyfileobj(src, dst)
    except (tarfile.TarError, EOFError) as exc:
        raise ExportError(f"{archive} is not a readable tar archive ({exc}); delete it and download again") from None
    except OSError as exc:
        raise ExportError(f"cannot extract {archive} to {target}: {exc}") from None
    return target


def _mirrored(url: str, mirror: Optional[str]) -> str:
    if not mirror:
        return url
    return mirror.rstrip("/") + urlsplit(url).path


def fetch_model(
    name: str,
    kind: str = "inference",
    cache_dir: Optional[Path] = None,
    *,
    mirror: Optional[str] = None,
    progress: bool = True,
) -> Path:
    """Download (or reuse) a zoo model's inference directory or pretrained weights."""
    model = get_model(name)
    downloads = cache.downloads_dir(cache_dir)
    mirror = mirror if mirror is not None else os.environ.get("EDGE_MODEL_MIRROR")
    if kind == "pretrained":
        return fetch(_mirrored(model.pretrained_url, mirror), downloads, progress=progress)
    if kind != "inference":
        raise ExportError(f"unknown download kind {kind!r} for {name}: use 'inference' or 'pretrained'")

    archive = fetch(_mirrored(model.inference_url, mirror), downloads, progress=progress)
    model_dir = cache.official_dir(model.name, cache_dir)
    stamp = model_dir / ".extracted_from"
    archive_sha = _recorded_sha256(archive)
    if stamp.exists() and stamp.read_text(encoding="ascii").strip() == archive_sha:
        return model_dir
    extract_tar(archive, model_dir)
    if not is_inference_dir(model_dir):
        raise ExportError(f"{archive} holds no inference.yml at its top level; it is not an inference model archive")
    stamp.write_text(f"{archive_sha}\n", encoding="ascii")
    return model_dir
