"""Typed errors. Every message says what failed, on which input, and what to do next."""
from __future__ import annotations


class EdgeError(Exception):
    """Base class of every error this package raises on purpose."""


class InputError(EdgeError):
    """An input (image, PDF, URL, directory, video) could not be read."""

    def __init__(self, source: object, reason: str):
        self.source = source
        self.reason = reason
        super().__init__(f"cannot read input {describe_source(source)}: {reason}")


def describe_source(source: object, limit: int = 200) -> str:
    """A short name for an input in messages: an image array or a list is not printed whole."""
    if hasattr(source, "shape") and hasattr(source, "dtype"):
        return f"<array {'x'.join(str(n) for n in source.shape)} {source.dtype}>"
    if isinstance(source, (list, tuple)):
        return f"<{type(source).__name__} of {len(source)} items>"
    text = repr(source)
    return text if len(text) <= limit else text[: limit - 3] + "..."


class ModelError(EdgeError):
    """A model directory, bundle or model name is unusable."""


class ManifestError(ModelError):
    """A bundle's manifest.json is missing, malformed, or does not match model.nb."""


class BackendError(EdgeError):
    """An inference engine failed to load or run a model."""


class ConfigError(EdgeError):
    """A pipeline config, CLI option or argument is invalid."""


class RemoteError(BackendError):
    """The serving endpoint could not be reached or answered with an error."""


class ServerError(EdgeError):
    """`edge serve` could not start, is busy, or stopped answering."""


class ExportError(EdgeError):
    """A step of `edge export` failed; nothing half-written is left behind."""


class Terminated(BaseException):
    """SIGTERM, raised where a command asked for it (`edge export`), so that the stack unwinds and
    scratch directories are removed; like KeyboardInterrupt, not an error of the input."""
