"""Progress bars for long work (calibration, verification, evaluation, a directory or a video).

Library code wraps its loops in `bar(...)`; whether a bar is drawn is the command line's choice,
not the library's: `with shown(not args.quiet):` around a command turns bars on, and even then a
bar is drawn only when its stream (stderr) is a terminal. So the Python API, pipes, CI logs and
`--quiet` get no bar and no stray carriage returns. tqdm draws the bars; without tqdm there are none.
"""
from __future__ import annotations

import contextlib
import contextvars
import sys
from typing import IO, Any, Iterable, Iterator, Optional

_SHOWN: contextvars.ContextVar[bool] = contextvars.ContextVar("edge_progress_shown", default=False)


@contextlib.contextmanager
def shown(enabled: bool = True) -> Iterator[None]:
    """Within this block, `bar` draws (on a terminal) when `enabled`."""
    token = _SHOWN.set(bool(enabled))
    try:
        yield
    finally:
        _SHOWN.reset(token)


def is_terminal(stream: Optional[IO[str]]) -> bool:
    try:
        return bool(stream is not None and stream.isatty())
    except (AttributeError, ValueError):  # closed or not a real stream
        return False


def bar(iterable: Optional[Iterable[Any]] = None, *, total: Optional[int] = None, desc: str = "",
        unit: str = "img", stream: Optional[IO[str]] = None) -> Any:
    """A tqdm bar over `iterable` when bars are shown and `stream` (default stderr) is a terminal;
    otherwise the iterable itself (or, with no iterable, an object whose update/close do nothing)."""
    stream = stream if stream is not None else sys.stderr
    if _SHOWN.get() and is_terminal(stream):
        try:
            from tqdm import tqdm
        except ImportError:
            tqdm = None
        if tqdm is not None:
            return tqdm(iterable, total=total, desc=desc, unit=unit, file=stream, leave=False, dynamic_ncols=True)
    return iterable if iterable is not None else _Silent()


class _Silent:
    def update(self, n: int = 1) -> None:
        pass

    def close(self) -> None:
        pass

    def __enter__(self) -> "_Silent":
        return self

    def __exit__(self, *exc: Any) -> None:
        pass
