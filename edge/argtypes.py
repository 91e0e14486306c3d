"""Command-line option values: argparse types that refuse what cannot work, and one-line errors.

A bad value (`--port 70000`, `--max-body-mb nan`, `--workers 0`) exits 2 with one line naming the
option, before anything is loaded; no usage block, no traceback.
"""
from __future__ import annotations

import argparse
import math
from typing import Any, Callable, NoReturn


class OneLineParser(argparse.ArgumentParser):
    """argparse that reports a bad option in one line (exit 2), without the usage block."""

    def error(self, message: str) -> NoReturn:  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def number(kind: type, low: float, high: float = math.inf, *, low_open: bool = False) -> Callable[[str], Any]:
    """An argparse type: a finite `kind` in [low, high] (or (low, high] with `low_open`)."""

    def parse(text: str) -> Any:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"invalid {kind.__name__} value: {text!r}") from None
        if not math.isfinite(value) or value < low or value > high or (low_open and value == low):
            bounds = f"{'>' if low_open else '>='} {low:g}" + ("" if high == math.inf else f" and <= {high:g}")
            raise argparse.ArgumentTypeError(f"must be a number {bounds}, got {text!r}")
        return value

    parse.__name__ = kind.__name__
    return parse


PORT = number(int, 0, 65535)
COUNT = number(int, 1)
NON_NEGATIVE_INT = number(int, 0)
POSITIVE = number(float, 0, low_open=True)
NON_NEGATIVE = number(float, 0)
