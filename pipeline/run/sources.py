"""The sources of a running `detstream run`, started, stopped and changed while it runs.

`Sources` implements SourceControl (pipeline/run/control.py) for the control API. Rules:
- Per-source settings live in dicts the stages read at every frame (selection, weak
  candidates' score, ROI, max age, tracking): a change is one assignment, and no other
  source waits for it. A change of tracking, zones or lines also `reset`s the source in
  the track stage: its tracks end (with their events) and start again.
- Removing a source: its reader is asked to stop, its `SourceEnd` goes into its queue
  behind its queued frames, and `remove` returns once the track stage has passed that end
  on (its frames drained, its tracks ended, the sinks told) and its reader thread (and a
  live reader's watchdog) has ended; then its health, metrics and queue are forgotten.
- Pausing (`enabled: false`) is removing without forgetting; resuming starts a new reader.
- A name's `seq` and track ids go on across pause, resume, removal and re-adding within a
  run, so event ids never repeat.
- Before the model has loaded (`attach`), the API can ask about readiness and sources,
  and changes are refused (NotReady: the API answers 503).
- Clips: a tracked source with clips on (its `clips` over the run's) gets a buffer of
  its encoded packets from the run's ClipRecorder, filled by its reader. A source added
  at runtime can have clips only if the run has a recorder (`clips.enabled`, or a
  configured source's); clips settings cannot change while running.
"""

from __future__ import annotations

import logging
import math
import threading
from pathlib import PurePosixPath
from urllib.parse import urlsplit
from contextlib import AbstractContextManager
from functools import partial
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from engines.base import ModelInfo
from engines.outputs import Selection
from pipeline.core.clips_config import ClipsConfig
from pipeline.core.config import RunConfig, SourceConfig, parse_settings
from pipeline.core.context import RunContext
from pipeline.core.errors import ConfigError, DetstreamError, SourceExists, UnknownSource
from pipeline.core.health import SourceHealth, State
from pipeline.core.queues import SourceMux
from pipeline.core.secrets import mask_url
from pipeline.core.tap import FrameTap, Watcher
from pipeline.core.types import SourceEnd
from pipeline.run.control import UPDATABLE
from stages.base import Stage
from stages.clips.recorder import ClipRecorder
from stages.clips.rules import check_classes
from stages.decode import Decoder
from stages.live import LiveDecoder
from stages.roi import Roi
from stages.tracking.source_tracks import SourceSettings

if TYPE_CHECKING:
    from stages.track import Track

log = logging.getLogger("detstream")
DRAIN_TIMEOUT_S = 30.0  # a removed source's queued frames must be through the pipeline by then
SCENE_KEYS = ("tracking", "zones", "lines")


class NotReady(DetstreamError):
    """The pipeline is still starting (the model is loading): try again shortly."""


def source_names(sources: list[SourceConfig]) -> list[str]:
    """Source ids: the configured name, else the file name (URL host/path, no credentials)."""
    names: list[str] = []
    for source in sources:
        if source.name:
            base = source.name
        else:
            parts = urlsplit(source.uri)
            base = PurePosixPath(parts.path).name
            if base in ("", ".", ".."):  # `rtsp://cam/..` names no file: its host does
                base = parts.hostname or mask_url(source.uri)
        name, n = base, 1
        while name in names:
            n += 1
            name = f"{base}#{n}"
        names.append(name)
    return names


class Sources:
    def __init__(self, config: RunConfig, ctx: RunContext) -> None:
        self.run_config = config
        self.ctx = ctx
        self.entries: dict[str, SourceConfig] = {}  # every source, paused ones too
        self.decoders: dict[str, Decoder] = {}  # the running ones
        self.selections: dict[str, Selection] = {}  # sources with their own classes or thresholds
        self.low_scores: dict[str, float] = {}  # tracked sources: weak candidates down to this
        self.rois: dict[str, Roi] = {}
        self.max_age_s: dict[str, float] = {}
        self.tracking: dict[str, SourceSettings] = {}
        self.clips: dict[str, ClipsConfig] = {}  # sources with clips on
        self.recorder: ClipRecorder | None = None
        self.tap = FrameTap()
        self._next_seq: dict[str, int] = {}
        self._ended: dict[str, threading.Event] = {}
        self._lock = threading.RLock()
        self._attached = False
        self._running = False

    # --- building the run ------------------------------------------------------------

    def attach(
        self,
        info: ModelInfo,
        mux: SourceMux,
        stages: list[Stage],
        floor: float,
        mask_floor: float,
        recorder: ClipRecorder | None = None,
    ) -> None:
        """The model has loaded and the graph is built; `stages` is the supervisor's list
        (decoders of added sources join it). `floor`: the engine's lowest score;
        `mask_floor`: the lowest it computes masks for; `recorder`: the run's clips, if any."""
        self.info, self.mux, self.stages = info, mux, stages
        self.floor, self.mask_floor = floor, mask_floor
        self.recorder = recorder
        self._attached = True
        for name, source in zip(self._initial_names(), self.run_config.sources):
            self._configure(name, source, f"sources.{len(self.entries)}")
            if source.enabled:
                self._start(name)
            else:
                self._pause_health(name)

    def bind(self, track: Track) -> None:
        self.track = track

    def started(self) -> None:
        """The run's stages are running: from now on new readers start at once."""
        self._running = True

    def ended(self, source: str) -> None:
        """Called by the track stage once a source's end has passed through (no lock: a
        removal holds it while it waits for this)."""
        event = self._ended.get(source)
        if event is not None:
            event.set()

    def _initial_names(self) -> list[str]:
        return source_names(self.run_config.sources)

    # --- SourceControl ---------------------------------------------------------------

    def live(self) -> bool:
        return not self.ctx.abort.is_set()

    def ready(self) -> dict[str, Any]:
        states = {name: self._state(name) for name in self.entries}
        enabled = [name for name, source in self.entries.items() if source.enabled]
        ok = self._attached and all(states[name] in ("streaming", "finished") for name in enabled)
        return {"ready": ok, "model_loaded": self._attached, "sources": states}

    def sources(self) -> list[dict[str, Any]]:
        with self._lock:
            return [self._view(name) for name in self.entries]

    def source(self, name: str) -> dict[str, Any]:
        with self._lock:
            self._known(name)
            return self._view(name)

    def add(self, settings: dict[str, Any]) -> dict[str, Any]:
        self._require_attached()
        source = parse_settings(SourceConfig, settings, "source")
        with self._lock:
            name = source_names([source])[0]
            if name in self.entries:
                raise SourceExists(f"a source named {name!r} already exists")
            self._configure(name, source, "source")
            if source.enabled:
                self._start(name)
            else:
                self._pause_health(name)
            log.info("source %r added (%s)", name, mask_url(source.uri))
            return self._view(name)

    def remove(self, name: str) -> None:
        self._require_attached()
        with self._lock:
            self._known(name)
            self._stop(name)
            self._forget(name)
        log.info("source %r removed", name)

    def update(self, name: str, changes: dict[str, Any]) -> dict[str, Any]:
        self._require_attached()
        if not isinstance(changes, dict):
            raise ConfigError("expected an object of settings to change")
        for key in changes:
            if key not in UPDATABLE:
                raise ConfigError(f"{key}: cannot be changed while running (allowed: {', '.join(UPDATABLE)})")
        with self._lock:
            self._known(name)
            old = self.entries[name]
            new = parse_settings(SourceConfig, {**old.model_dump(), **changes}, name)
            self._configure(name, new, name)
            if any(key in changes for key in SCENE_KEYS) and self.track is not None:
                self.track.reset(name)
            if "max_fps" in changes and name in self.decoders:
                self.decoders[name].reader.set_max_fps(new.max_fps)
            if old.enabled and not new.enabled and name in self.decoders:
                self._stop(name)
                self._pause_health(name)
            elif new.enabled and name not in self.decoders:
                self.ctx.health[name].resumed()
                self._start(name)
            return self._view(name)

    def config(self) -> dict[str, Any]:
        with self._lock:
            effective = self.run_config.model_copy(update={"sources": list(self.entries.values())})
        data = effective.model_dump(mode="json")
        for source in data["sources"]:
            source["uri"] = mask_url(source["uri"])
        data["sinks"] = [mask_url(uri) for uri in data["sinks"]]
        if data["api"]["token"] is not None:
            data["api"]["token"] = "***"
        return data

    def watch(self, name: str) -> AbstractContextManager[Watcher]:
        self._known(name)
        return self.tap.watch(name)

    # --- helpers ---------------------------------------------------------------------

    def _require_attached(self) -> None:
        if not self._attached:
            raise NotReady("the pipeline is starting (the model is loading): try again shortly")

    def _known(self, name: str) -> None:
        if name not in self.entries:
            raise UnknownSource(f"no source named {name!r}")

    def _state(self, name: str) -> str:
        health = self.ctx.health.get(name)
        return health.state.value if health is not None else State.CONNECTING.value

    def _view(self, name: str) -> dict[str, Any]:
        source = self.entries[name]
        health = self.ctx.health.get(name)
        snapshot = health.snapshot() if health is not None else {}
        settings = source.model_dump(mode="json")
        settings["uri"] = mask_url(settings["uri"])
        return {
            "name": name,
            "uri": settings["uri"],
            "live": source.is_live,
            "enabled": source.enabled,
            "state": self._state(name),
            "fps": health.fps() if health is not None else 0.0,
            "counters": {k: v for k, v in snapshot.items() if k not in ("state", "live", "last_error")},
            "last_error": snapshot.get("last_error"),
            "watchers": self.tap.watching(name),
            "settings": settings,
        }

    def _configure(self, name: str, source: SourceConfig, key: str) -> None:
        """Check `source`'s settings against the model and put them where the stages read them."""
        model = self.run_config.source_model(source)
        selection = Selection.for_model(model, self.info, key) if model is not self.run_config.model else None
        tracking = self.run_config.source_tracking(source)
        emitted = min(model.thresholds(), default=math.inf)
        lowest = min(emitted, tracking.low_score if tracking.enabled else math.inf)
        if lowest < self.floor - 1e-9:
            raise ConfigError(
                f"{key}: a score of {lowest:g} is below the engine's floor {self.floor:g} set at start "
                "(give that threshold in the config to start with)"
            )
        if self.info.has_masks and emitted < self.mask_floor - 1e-9:
            raise ConfigError(
                f"{key}: a score threshold of {emitted:g} is below {self.mask_floor:g}, the lowest score the "
                "engine computes masks for, set at start (give that threshold in the config to start with)"
            )
        self.entries[name] = source
        _put(self.selections, name, selection)
        _put(self.low_scores, name, tracking.low_score if tracking.enabled else None)
        _put(self.rois, name, Roi(source.roi) if source.roi else None)
        _put(self.max_age_s, name, source.max_age_s)
        self.tracking[name] = SourceSettings(tracking, source.zones, source.lines, source.is_live)
        _put(self.clips, name, self._clips(source, key) if tracking.enabled else None)

    def _clips(self, source: SourceConfig, key: str) -> ClipsConfig | None:
        """`source`'s clips settings when on, checked against the model."""
        try:
            clips = self.run_config.source_clips(source)
        except ValidationError as exc:  # a source added at runtime whose keys disagree with the run's
            reason = exc.errors()[0]["msg"].removeprefix("Value error, ")
            raise ConfigError(f"{key}.clips: {reason}", field=f"{key}.clips") from None
        if not clips.enabled:
            return None
        if self.recorder is None:
            raise ConfigError(f"{key}.clips: this run started without clips (turn clips on in its config)",
                              field=f"{key}.clips")
        check_classes(clips.rules, self.info.class_names, f"{key}.clips" if source.clips else "clips")
        return clips

    def _start(self, name: str) -> None:
        source, config = self.entries[name], self.run_config
        health = self.ctx.health.get(name)
        if health is None:
            health = self.ctx.health[name] = SourceHealth(name, source.is_live, finish_logged_later=True)
        capacity = source.queue_capacity(config.queue_size)
        self.mux.add(name, capacity, source.drops_oldest)
        self.ctx.metrics.add_queue(f"source[{name}]", "preprocess", partial(self.mux.depth, name), capacity)
        kind = LiveDecoder if source.is_live else Decoder
        clips = self.clips.get(name)
        packets = self.recorder.add_source(name, clips, source.is_live) if clips and self.recorder else None
        decoder = kind(source, name, self.mux, self.ctx, config.max_frames, self._next_seq.get(name, 0), packets)
        self.decoders[name] = decoder
        self._ended[name] = threading.Event()
        self.stages.append(decoder)
        if self._running:
            decoder.start()

    def _stop(self, name: str) -> None:
        """Stop a running source and wait until its end is through the pipeline."""
        decoder = self.decoders.pop(name, None)
        if decoder is None:
            return
        decoder.stop.set()
        self.mux.close(name, SourceEnd(name))  # what is queued drains; what the reader still puts is refused
        source = self.entries[name]
        if decoder.is_alive():
            decoder.join(source.open_timeout_s + source.read_timeout_s + 1.0 if source.is_live else DRAIN_TIMEOUT_S)
            if decoder.is_alive():
                log.warning("source %r: its reader has not ended yet; it will once its network call times out", name)
        if self._running and not self._ended[name].wait(DRAIN_TIMEOUT_S):
            log.warning("source %r: its last frames did not drain within %.0f s", name, DRAIN_TIMEOUT_S)
        self._next_seq[name] = decoder.reader.frames
        if decoder in self.stages:
            self.stages.remove(decoder)
        self.ctx.metrics.remove(decoder.name, f"source[{name}]")

    def _pause_health(self, name: str) -> None:
        health = self.ctx.health.get(name)
        if health is None:
            health = self.ctx.health[name] = SourceHealth(name, self.entries[name].is_live, finish_logged_later=True)
        health.paused()

    def _forget(self, name: str) -> None:
        del self.entries[name]
        for table in (self.selections, self.low_scores, self.rois, self.max_age_s, self.tracking, self.clips, self._ended):
            table.pop(name, None)
        if self.recorder is not None:
            self.recorder.forget(name)
        self.ctx.health.pop(name, None)


def _put(table: dict[str, Any], name: str, value: Any) -> None:
    if value is None:
        table.pop(name, None)
    else:
        table[name] = value
