"""The small exception tree of detstream.

Foreign errors (PyAV, torch, YAML, pydantic) are converted at the boundary with
`raise ... from`, so callers catch `DetstreamError` and print one clear line.
"""


class DetstreamError(Exception):
    """Base class: the message is meant for the user, one line, no traceback."""


class ConfigError(DetstreamError):
    """A config file or flag has an unknown key or a bad value."""


class SourceError(DetstreamError):
    """A source cannot be opened or read."""

    def __init__(self, source: str, reason: str) -> None:
        super().__init__(f"source {source!r}: {reason}")
        self.source = source
        self.reason = reason


class ModelError(DetstreamError):
    """A model cannot be found, loaded or run."""


class SinkError(DetstreamError):
    """A sink cannot be opened or written."""


class RedisSetupError(DetstreamError):
    """A Redis URL is malformed, or the server refuses our credentials or TLS settings."""


class StageError(DetstreamError):
    """A stage failed while the pipeline was running."""
