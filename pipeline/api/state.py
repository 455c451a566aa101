"""`api.state_file`: the sources as changed through the API, saved after every change and
restored at the next start.

Rules:
- The file holds the effective list of sources WITH their credentials (a camera's password
  is needed to reconnect to it): it is written with write_atomic (never torn, even on a
  crash) and mode 0600 from its first byte. Keep it where only the user running detstream
  can read.
- It is YAML with one key, `sources`: the same entries as a config file's `sources` list.
  Each entry keeps only the keys that were set (defaults stay defaults) plus its `name`,
  so a restored source keeps the name the API used.
- PATCH replaces each key it gives, whole (a `zones` list is replaced, not merged).
- `restore(config)` replaces `config.sources` with the saved list when the file exists:
  the saved list wins over the config file's and over `--source` (delete the file to go
  back to them). A file that does not parse or validate is a ConfigError naming the file
  and the key: a run with the wrong cameras is worse than no run.
- A change that cannot be saved is logged as an error; the change itself stays applied.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

from pipeline.core.config import RunConfig, SourceConfig, load_settings
from pipeline.core.config_base import Settings
from pipeline.core.errors import ConfigError
from pipeline.core.files import write_atomic
from pipeline.run.sources import source_names

log = logging.getLogger("detstream")

MODE = 0o600
HEADER = (
    "# detstream api.state_file: the sources as changed through the control API, restored\n"
    "# at the next start. Holds camera credentials: keep it private (written with mode 0600).\n"
)


class SavedState(Settings):
    sources: list[SourceConfig]


def restore(config: RunConfig) -> RunConfig:
    """`config` with the sources saved in `api.state_file`, when that file exists."""
    path = config.api.state_file
    if path is None or not path.exists():
        return config
    try:
        saved = load_settings(SavedState, path)
    except ConfigError as exc:  # the loader's own line, unless the file is not text or unreadable
        if isinstance(exc.__cause__, UnicodeDecodeError):
            raise ConfigError(f"{path}: not a state file (not UTF-8 text); delete it to start from the config's "
                              "sources") from exc
        if isinstance(exc.__cause__, OSError) and not isinstance(exc.__cause__, (FileNotFoundError, IsADirectoryError)):
            raise ConfigError(f"{path}: cannot read the state file: {exc.__cause__.strerror or exc.__cause__}") from exc
        raise
    log.info("restored %d sources from %s (api.state_file)", len(saved.sources), path)
    return config.model_copy(update={"sources": list(saved.sources)})


def _entry(source: SourceConfig, name: str) -> dict[str, Any]:
    return {**source.model_dump(mode="json", exclude_unset=True), "name": name}


class SavedSources:
    """The effective sources, with credentials, kept in step with the API's changes and
    written to `path` after each one. Thread-safe; the API also runs changes one at a time."""

    def __init__(self, path: Path, sources: Sequence[SourceConfig]) -> None:
        self.path = Path(path)
        self._entries = {name: _entry(s, name) for name, s in zip(source_names(list(sources)), sources)}
        self._lock = threading.Lock()

    def added(self, name: str, settings: dict[str, Any]) -> None:
        with self._lock:
            self._entries[name] = {**settings, "name": name}
            self._save()

    def updated(self, name: str, changes: dict[str, Any]) -> None:
        with self._lock:
            entry = self._entries.get(name)
            if entry is None:  # not one the API knows: saving half an entry would break the restore
                log.warning("api.state_file: no saved source %r to update", name)
                return
            entry.update(changes)
            self._save()

    def removed(self, name: str) -> None:
        with self._lock:
            self._entries.pop(name, None)
            self._save()

    def entries(self) -> list[dict[str, Any]]:
        with self._lock:
            return [dict(entry) for entry in self._entries.values()]

    def _save(self) -> None:
        text = HEADER + yaml.safe_dump({"sources": list(self._entries.values())}, sort_keys=False)
        try:
            write_atomic(self.path, text.encode(), mode=MODE)
        except OSError as exc:
            log.error("api.state_file %s: cannot save the sources: %s", self.path, exc.strerror or exc)
