"""`clips`: event clips and snapshots (stages/clips/), as the config gives them.

A run's `clips` applies to every source; a source's own `clips` keys (`sources[].clips`,
those of SOURCE_CLIP_KEYS) replace the run's for that source. The folder and its
retention are the run's only: one folder, one size limit.

Rules checked here: times are finite and not negative; `buffer_s >= pre_s` (the pre-roll
comes out of the buffer); sizes are bytes, given as a whole number or with a unit
(`64MB`, `512KiB`, `10GB`); a rule's `types` are event types that can start a clip (not
`clip_ready`); a rule naming zones or lines must take zone or line events; snapshots, when
on, are annotated, cropped or both. Zone and line names of rules are checked against the
sources' zones and lines by RunConfig (pipeline/core/config.py), class names against the
model's once it has loaded (stages/clips/rules.py).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Any

from pydantic import AfterValidator, BeforeValidator, Field, ValidationError, model_validator

from pipeline.core.config_base import ClassNames, Settings
from pipeline.core.events import LINE_TYPES, TRACK_EVENT_TYPES, ZONE_TYPES
from pipeline.core.scene_config import LineConfig, ZoneConfig

_UNITS = {"": 1, "k": 10**3, "m": 10**6, "g": 10**9, "t": 10**12, "ki": 2**10, "mi": 2**20, "gi": 2**30, "ti": 2**40}


def parse_size(value: Any) -> Any:
    """Bytes from `123`, `64MB`, `1.5GiB` (decimal units are powers of 1000, `i` ones of 1024)."""
    if isinstance(value, bool):
        raise ValueError("expected a size in bytes, such as 64000000 or 64MB")
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str):
        match = re.fullmatch(r"(\d+(?:\.\d+)?)\s*([kmgt]i?)?b?", value.strip().lower())
        if not match:
            raise ValueError("expected a size in bytes, such as 64000000, 64MB or 512KiB")
        return int(float(match[1]) * _UNITS[match[2] or ""])
    return value


Bytes = Annotated[int, BeforeValidator(parse_size)]
# the events that can open or extend a clip: a clip's own `clip_ready` cannot
DEFAULT_RULE_TYPES = ("track_start", "zone_enter", "line_cross")


def _event_types(value: tuple[str, ...]) -> tuple[str, ...]:
    unknown = [kind for kind in value if kind not in TRACK_EVENT_TYPES]
    if unknown:
        raise ValueError(f"{unknown[0]!r} is not an event type that can start a clip (allowed: {', '.join(TRACK_EVENT_TYPES)})")
    return value


class ClipRule(Settings):
    """One rule: an event matches when its type, class and place all match (a key not given
    matches anything); an event matching any rule of its source starts or extends a clip."""

    types: Annotated[tuple[str, ...], BeforeValidator(lambda v: [v] if isinstance(v, str) else v),
                     AfterValidator(_event_types), Field(min_length=1)] = Field(
        DEFAULT_RULE_TYPES, description="event types that match"
    )
    classes: ClassNames | None = Field(None, description="class names that match; default: every class")
    zones: tuple[str, ...] = Field((), description="zone events of these zones only; default: any zone")
    lines: tuple[str, ...] = Field((), description="line events of these lines only; default: any line")

    @model_validator(mode="after")
    def _places_need_place_events(self) -> ClipRule:
        if self.zones and not set(self.types) & set(ZONE_TYPES):
            raise ValueError(f"zones {list(self.zones)} given, but types {list(self.types)} has no zone event "
                             f"({', '.join(ZONE_TYPES)})")
        if self.lines and not set(self.types) & set(LINE_TYPES):
            raise ValueError(f"lines {list(self.lines)} given, but types {list(self.types)} has no line_cross")
        return self


class SnapshotConfig(Settings):
    """`clips.snapshots`: JPEGs of the frame with the best-scoring box of each track of a clip."""

    enabled: bool = Field(True, description="write snapshots of the clips' tracks")
    annotated: bool = Field(True, description="the whole frame with its boxes, ids, zones and lines drawn")
    crop: bool = Field(True, description="the best box alone, plain pixels")
    crop_margin: float = Field(0.2, ge=0, le=2, allow_inf_nan=False, description="crop: this share of the box's width "
                               "and height added on each side")
    quality: int = Field(90, ge=1, le=100, description="JPEG quality")

    @model_validator(mode="after")
    def _something_to_write(self) -> SnapshotConfig:
        if self.enabled and not (self.annotated or self.crop):
            raise ValueError("annotated and crop are both false: nothing to write (set enabled: false instead)")
        return self


class RetentionConfig(Settings):
    """`clips.retention`: what the clip folder keeps; the oldest files go first."""

    max_age_s: float | None = Field(7 * 86400.0, gt=0, allow_inf_nan=False,
                                    description="delete clips and snapshots older than this; none: no age limit")
    max_bytes: Bytes | None = Field(10 * 10**9, gt=0, description="the folder's total size limit; none: no size limit")


class ClipsConfig(Settings):
    """`clips`: MP4 clips of events, cut from a buffer of the encoded stream (no re-encoding)."""

    enabled: bool = Field(False, description="write a clip (and snapshots) for events that match `rules`")
    dir: Path = Field(Path("clips"), description="folder of the clips, one sub-folder per source")
    pre_s: float = Field(5.0, ge=0, allow_inf_nan=False, description="seconds before the first event (from the key "
                         "frame at or before)")
    post_s: float = Field(5.0, ge=0, allow_inf_nan=False, description="seconds after the last event of the clip")
    buffer_s: float = Field(10.0, gt=0, le=3600, allow_inf_nan=False, description="seconds of encoded video kept per "
                            "source")
    buffer_bytes: Bytes = Field(64 * 10**6, ge=10**5, description="bytes of encoded video kept per source at most")
    rules: list[ClipRule] = Field(default_factory=lambda: [ClipRule()], min_length=1,
                                  description="events that start or extend a clip")
    snapshots: SnapshotConfig = Field(default_factory=SnapshotConfig)
    retention: RetentionConfig = Field(default_factory=RetentionConfig)

    @model_validator(mode="after")
    def _buffer_holds_the_pre_roll(self) -> ClipsConfig:
        if self.buffer_s < self.pre_s:
            raise ValueError(f"buffer_s ({self.buffer_s:g}) must be at least pre_s ({self.pre_s:g}): "
                             "the pre-roll comes out of the buffer")
        return self


# the keys a source may set for itself; the folder and its retention are the run's
SOURCE_CLIP_KEYS = ("enabled", "pre_s", "post_s", "buffer_s", "buffer_bytes", "rules", "snapshots")


def clips_override(value: Any) -> Any:
    """A source's `clips` keys, each checked against ClipsConfig; merged over the run's."""
    if value is None:
        return None
    if not isinstance(value, dict):
        raise ValueError("expected a mapping of clips settings")
    for key, item in value.items():
        if key not in SOURCE_CLIP_KEYS:
            raise ValueError(f"unknown key {key!r} (allowed here: {', '.join(SOURCE_CLIP_KEYS)})")
        try:
            # buffer_s against pre_s is checked once merged with the run's (RunConfig)
            apart = {"buffer_s": {"pre_s": 0}, "pre_s": {"buffer_s": 3600}}.get(key, {})
            ClipsConfig.model_validate({key: item, **apart})
        except ValidationError as exc:
            error = exc.errors()[0]
            where = ".".join(str(part) for part in error["loc"])
            raise ValueError(f"{where} = {error['input']!r}: {error['msg'].removeprefix('Value error, ')}") from None
    return value


def check_rule_places(clips: ClipsConfig, zones: list[list[ZoneConfig]], lines: list[list[LineConfig]], key: str) -> None:
    """The zone and line names of `clips.rules` must each be one of the sources' (`zones`,
    `lines`: those of each source the rules apply to): a typo would silently match nothing."""
    known = {"zones": sorted({z.name for group in zones for z in group}),
             "lines": sorted({n.name for group in lines for n in group})}
    for index, rule in enumerate(clips.rules):
        for kind, names in (("zones", rule.zones), ("lines", rule.lines)):
            unknown = [name for name in names if name not in known[kind]]
            if unknown:
                allowed = ", ".join(known[kind]) or f"none: no source has {kind}"
                raise ValueError(f"{key}.rules.{index}.{kind}: {unknown[0]!r} is not one of the sources' {kind} "
                                 f"(allowed: {allowed})")
