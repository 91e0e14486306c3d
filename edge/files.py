"""Files on disk: content hashes, and publishing a directory atomically.

Every directory this project writes for a user (a bundle, an exported program, an extracted
download, a cache entry) goes through `publishing`: it is built in a hidden sibling and appears
at its final path in one rename, so a reader never sees it half-written and a failure leaves the
previous version untouched.
"""
from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator, Optional


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


@contextmanager
def publishing(final: Path, *, replace_if: Optional[Callable[[Path], bool]] = None,
               fsync: bool = False) -> Iterator[Path]:
    """Yield an empty staging directory beside `final`; when the block succeeds it becomes `final`.

    An existing `final` is replaced only when `replace_if(final)` says so (checked before the
    block runs, so no work is wasted; `FileExistsError` otherwise; default: any directory). The
    old one is moved aside, the new one renamed in, and the old one removed only then; if the
    rename fails the old one is put back. When the block raises, the staging directory is removed
    and `final` is as it was. `fsync=True` flushes the files first, so a crash right after the
    rename cannot expose empty files. OS errors propagate for the caller to name its context.
    """
    final = Path(final)
    _check_replaceable(final, replace_if)
    final.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{final.name}.partial-", dir=final.parent))
    try:
        yield staging
        if fsync:
            _fsync_files(staging)
        move_into_place(staging, final, replace_if=replace_if)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def publish_copy(src: Path, final: Path, **kwargs) -> Path:
    """Copy the directory `src` to `final` through `publishing` (same keyword arguments)."""
    with publishing(final, **kwargs) as staging:
        shutil.copytree(src, staging, dirs_exist_ok=True)
    return Path(final)


def _fsync_files(folder: Path) -> None:
    for path in folder.rglob("*"):
        if path.is_file():
            with open(path, "rb") as fh:
                os.fsync(fh.fileno())


def _check_replaceable(final: Path, replace_if: Optional[Callable[[Path], bool]]) -> None:
    if final.exists() or final.is_symlink():
        if not final.is_dir() or (replace_if is not None and not replace_if(final)):
            raise FileExistsError(f"{final} exists and is not something this tool may replace")


def move_into_place(built: Path, final: Path, *, replace_if: Optional[Callable[[Path], bool]] = None) -> None:
    """Rename the finished directory `built` (same file system) to `final`, as `publishing` does."""
    _check_replaceable(final, replace_if)
    staging = built
    if not final.exists():
        os.rename(staging, final)
        return
    old = Path(tempfile.mkdtemp(prefix=f".{final.name}.old-", dir=final.parent))
    old.rmdir()
    os.rename(final, old)
    try:
        os.rename(staging, final)
    except BaseException:
        os.rename(old, final)  # put the previous version back
        raise
    shutil.rmtree(old, ignore_errors=True)
