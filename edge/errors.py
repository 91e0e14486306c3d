"""Typed errors. Every message says what failed, on which input, and what to do next."""
from __future__ import annotations


class EdgeError(Exception):
    """Base class of every error this package raises on purpose."""


class InputError(EdgeError):
    """An input (image, PDF, URL, directory, video) could not be read."""

    def __init__(self, source: object, reason: str):
        self.source = source
        self.reason = reason
        super().__init__(f"cannot read input {source!r}: {reason}")


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
