"""One source's tracking: its tracker, its zones and lines, and the events they cause.

Rules:
- Tracker time is the stream clock: pts for files, capture time for live sources (a
  camera's pts restart or jump; arrival time does not). Frames thinned by stride or
  max_fps, or dropped to bound latency, are just a longer step for the motion model.
- A new `session` (a live source reconnected) ends every track of the old one first, with
  the old session's last frame as the events' frame; ids keep counting (unique per run).
- Only confirmed tracks reach zones and lines (stages/tracking/scene.py).
- Events of one frame come in this order: tracks that ended (their zone exits first),
  tracks that started, then the zone and line events of the frame's tracks.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

import numpy as np

from pipeline.core.config import TrackingConfig
from pipeline.core.events import EVENTS_SCHEMA, Event, track_event_id
from pipeline.core.messages import Overlay
from pipeline.core.scene_config import LineConfig, ZoneConfig
from pipeline.core.types import Candidates, Detections, Frame
from stages.tracking.scene import Scene, SceneEvent
from stages.tracking.trackers import make_tracker
from stages.tracking.tracks import TrackView


@dataclass(frozen=True)
class SourceSettings:
    """What tracking needs to know about one source."""

    tracking: TrackingConfig
    zones: list[ZoneConfig] = field(default_factory=list)
    lines: list[LineConfig] = field(default_factory=list)
    live: bool = False


class SourceTracks:
    def __init__(self, source: str, settings: SourceSettings, class_names: tuple[str, ...], model: str) -> None:
        self.source = source
        self.settings = settings
        self.class_names = class_names
        self.model = model
        self.tracker = make_tracker(settings.tracking)
        self.scene: Scene | None = None  # made at the first frame: normalized shapes need its size
        self._drawn: Overlay | None = None
        self.last: Frame | None = None  # the latest frame: the context of events without a frame
        self.started: Counter[str] = Counter()
        self.ended: Counter[str] = Counter()

    def frame(self, detections: Detections) -> tuple[np.ndarray, list[Event], Overlay | None]:
        """Track ids of the frame's detections (0: none), the frame's events, what to draw."""
        frame = detections.frame
        events: list[Event] = []
        if self.last is not None and frame.session != self.last.session:
            events += self.end()
        self._fit_scene(frame)
        self.last = frame
        t = frame.capture_ts if self.settings.live else frame.pts
        update = self.tracker.update(t, detections.candidates, detections.low or Candidates.empty(), frame.image)
        for track in update.ended:
            events += self._ended(track, frame)
        for track in update.started:
            self.started[self._label(track)] += 1
            events.append(self._event("track_start", track, frame, self._track_counts()))
        if self.scene is not None:
            events += [self._scene_event(e, frame) for e in self.scene.update(update.active, t, update.started)]
        return update.ids, events, self._overlay(bool(events))

    def end(self) -> list[Event]:
        """End every track now (reconnect, end of the source, end of the run)."""
        if self.last is None:
            return []
        last = self.last
        return [event for track in self.tracker.end_all() for event in self._ended(track, last, final=True)]

    def _ended(self, track: TrackView, frame: Frame, final: bool = False) -> list[Event]:
        events = []
        if self.scene is not None:
            events += [self._scene_event(e, frame) for e in self.scene.end_track(track, track.last_t, final)]
        self.ended[self._label(track)] += 1
        extra = {"first_t": round(track.first_t, 6), "last_t": round(track.last_t, 6), "hits": track.hits}
        events.append(self._event("track_end", track, frame, self._track_counts(), **extra))
        return events

    def _fit_scene(self, frame: Frame) -> None:
        settings = self.settings
        if not (settings.zones or settings.lines):
            return
        if self.scene is None:
            self.scene = Scene(settings.zones, settings.lines, frame.width, frame.height, self.source, self.class_names)
        elif self.last is not None and (self.last.width, self.last.height) != (frame.width, frame.height):
            self.scene.resize(frame.width, frame.height)
            self._drawn = None

    def _overlay(self, changed: bool) -> Overlay | None:
        """What to draw over the frame: rebuilt only when an event changed the counts (an
        Overlay is immutable, so frames in flight keep the counts of their own moment)."""
        if self.scene is None:
            return None
        if changed or self._drawn is None:
            self._drawn = Overlay(self.scene.zones_px, self.scene.lines_px, self.scene.counts())
        return self._drawn

    def _label(self, track: TrackView) -> str:
        return self.class_names[track.class_id]

    def _track_counts(self) -> dict[str, dict[str, int]]:
        return {"started": dict(self.started), "ended": dict(self.ended)}

    def _scene_event(self, event: SceneEvent, frame: Frame) -> Event:
        extra: dict[str, object] = {}
        if event.zone is not None:
            extra["zone"] = event.zone
        if event.line is not None:
            extra["line"] = event.line
            extra["direction"] = event.direction
        if event.dwell_s is not None:
            extra["dwell_s"] = round(event.dwell_s, 3)
        return self._event(event.type, event.track, frame, event.counts, **extra)

    def _event(self, kind: str, track: TrackView, frame: Frame, counts: dict[str, dict[str, int]], **extra: object) -> Event:
        place = extra.get("zone") or extra.get("line")
        body = {
            "schema": EVENTS_SCHEMA,
            "event_id": track_event_id(self.source, track.track_id, kind, str(place) if place else None, frame.seq),
            "type": kind,
            "source": self.source,
            "session": frame.session,
            "seq": frame.seq,
            "pts": round(frame.pts, 6),
            "capture_ts": round(frame.capture_ts, 6),
            "track_id": track.track_id,
            "class_id": track.class_id,
            "label": self._label(track),
            "box": [round(float(v), 2) for v in track.box],
            "score": round(float(track.score), 4),
            **extra,
            "counts": {group: dict(by_class) for group, by_class in counts.items()},
            "model": self.model,
        }
        return Event.of(body)
