"""The small exception tree of detstream (the only one: every package raises these).

Foreign errors (PyAV, torch, YAML, pydantic) are converted at the boundary with
`raise ... from`, so callers catch `DetstreamError` and print one clear line.
"""

from __future__ import annotations

from pathlib import Path

MAX_REPORTED = 5  # dataset problems listed in one message


class DetstreamError(Exception):
    """Base class: the message is meant for the user, one line, no traceback."""


class ConfigError(DetstreamError):
    """A config file or flag has an unknown key or a bad value.

    `field`: the dotted key at fault when one is known (the control API returns it)."""

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


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


class UnknownSource(DetstreamError):
    """A source name that the running pipeline does not have (control API: 404)."""


class SourceExists(DetstreamError):
    """A source of that name is already running (control API: 409)."""


class ApiError(DetstreamError):
    """The control API cannot be reached, or refused a request (`detstream sources`)."""


class TrainingError(DetstreamError):
    """Training cannot go on (diverged, incompatible resume, ...)."""


class DatasetError(DetstreamError):
    """A dataset file is missing, malformed or inconsistent with its images."""

    def __init__(self, path: Path, problems: list[str]) -> None:
        shown = "; ".join(problems[:MAX_REPORTED])
        if len(problems) > MAX_REPORTED:
            shown += f"; and {len(problems) - MAX_REPORTED} more"
        prefix = f"{len(problems)} problems: " if len(problems) > 1 else ""
        super().__init__(f"{path}: {prefix}{shown}")
        self.path = path
        self.problems = problems
