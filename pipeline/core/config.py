"""Typed run settings, loaded from YAML and overridden by CLI flags.

YAML holds values only. Every setting has a default, so `detstream run --source X`
works with no file. Validation errors name the key, the bad value and what is allowed.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar

import yaml
from pydantic import AfterValidator, BaseModel, Field, ValidationError, field_validator, model_validator

from pipeline.core.clips_config import ClipsConfig, check_rule_places, clips_override
from pipeline.core.config_base import ClassNames, ClassScores, Score, Settings
from pipeline.core.errors import ConfigError
from pipeline.core.scene_config import LineConfig, ZoneConfig
from pipeline.core.secrets import redact
from pipeline.core.urls import check_printable, check_source_uri, is_live_uri
from pipeline.core.yaml_files import YamlLimitError, load_yaml

# The compact Faster R-CNN trained by `make models` on synthetic scenes, shipped in engines/embedded/.
DEFAULT_MODEL = "embedded:faster-compact-synth"


def _device(value: str) -> str:
    if not re.fullmatch(r"cpu|cuda(:\d+)?", value):
        raise ValueError("not a device (allowed: cpu, cuda, cuda:N)")
    return value


Device = Annotated[str, AfterValidator(_device)]
# The class and score keys a source may set for itself: each replaces the model's key.
SOURCE_SELECTION_KEYS = ("classes", "score_threshold", "score_thresholds")


S = TypeVar("S", bound=Settings)


class ReconnectConfig(Settings):
    initial_s: float = Field(0.5, ge=0, description="delay before the first retry")
    max_s: float = Field(30.0, gt=0, description="cap of the doubling delay")
    jitter: float = Field(0.2, ge=0, le=1, description="random +- fraction of each delay")
    max_attempts: int | None = Field(None, ge=1, description="consecutive failed attempts before giving up; none: forever")


class TrackingConfig(Settings):
    """`tracking`: identities across frames (ByteTrack-style; stages/tracking/)."""

    enabled: bool = Field(True, description="give detections track ids and emit track, zone and line events")
    method: Literal["bytetrack", "iou"] = Field(
        "bytetrack", description="bytetrack: motion model, two-step association, memory; iou: greedy IoU baseline"
    )
    low_score: Score = Field(
        0.1, description="candidates from this score up to the emitted threshold keep tracks alive; never emitted"
    )
    match_iou: float = Field(0.2, gt=0, le=1, description="least IoU between a track's predicted box and an emitted detection")
    low_match_iou: float = Field(0.5, gt=0, le=1, description="least IoU for a low-score candidate to continue a track")
    min_hits: int = Field(3, ge=1, description="matched frames before a track is confirmed and gets an id")
    confirm_score: Score = Field(
        0.8, description="a track is confirmed only once one of its matched detections scored at least this; 0: off"
    )
    buffer_s: float = Field(1.0, gt=0, description="a track unmatched for this long (stream time) ends")
    look_gate: float = Field(
        0.15, gt=0, le=1,
        description="bytetrack: looks (colour bands) further apart than this never pair where a track or a detection "
        "has another candidate, nor continue a tentative track; 1: looks off",
    )


def _tracking_override(value: Any) -> Any:
    """A source's `tracking` keys, each checked against TrackingConfig; merged over the run's."""
    if value is None:
        return None
    if not isinstance(value, dict):
        raise ValueError("expected a mapping of tracking settings")
    for key, item in value.items():
        if key not in TrackingConfig.model_fields:
            raise ValueError(f"unknown key {key!r} (allowed here: {', '.join(TrackingConfig.model_fields)})")
        try:
            TrackingConfig.model_validate({key: item})
        except ValidationError as exc:
            raise ValueError(f"{key} = {item!r}: {exc.errors()[0]['msg'].removeprefix('Value error, ')}") from None
    return value


# 8K (8192 x 4320, DCI): the largest frames cameras and files send today.
MAX_PIXELS = 8192 * 4320
# A live queue only needs to absorb jitter: every frame waiting in it is latency.
LIVE_QUEUE_SIZE = 2


class SourceConfig(Settings):
    uri: Annotated[str, AfterValidator(check_source_uri)] = Field(min_length=1, description="file path or URL FFmpeg can open")
    name: Annotated[str | None, AfterValidator(check_printable)] = Field(
        None, min_length=1, description="source id in messages; default: derived from uri"
    )
    stride: int = Field(1, ge=1, description="keep every Nth decoded frame")
    max_fps: float | None = Field(None, gt=0, description="keep at most this many frames per second of stream time")
    live: Literal["auto"] | bool = Field("auto", description="auto: streams and devices are live, files are not")
    loop: bool = Field(False, description="files only: start again at the end, forever (seq and pts go on increasing)")
    queue: Literal["auto", "drop_oldest", "block"] = Field(
        "auto", description="full queue: drop the oldest frame (live default) or block the reader (file default)"
    )
    queue_size: int | None = Field(None, ge=1, description="frames queued for this source; default 2 live, run queue_size for files")
    max_age_ms: float | None = Field(1000.0, gt=0, description="live only: drop frames older than this at the detector")
    open_timeout_s: float = Field(10.0, gt=0, description="live only: give up opening after this long")
    read_timeout_s: float = Field(5.0, gt=0, description="live only: no packet for this long = stalled")
    rtsp_transport: Literal["tcp", "udp"] = Field("tcp", description="RTSP over TCP (interleaved) or UDP")
    # a decompression bomb (a tiny file whose header claims 16384x16384) must fail here,
    # from the header, not by an out-of-memory kill once the frame is allocated
    max_pixels: int = Field(
        MAX_PIXELS, ge=1, description="frames larger than this (width x height) are refused from the stream header"
    )
    reconnect: ReconnectConfig = Field(default_factory=ReconnectConfig)
    classes: ClassNames | None = Field(None, description="this source only: replaces model.classes")
    score_threshold: Score | None = Field(None, description="this source only: replaces model.score_threshold")
    score_thresholds: ClassScores | None = Field(None, description="this source only: replaces model.score_thresholds")
    tracking: Annotated[dict[str, Any] | None, AfterValidator(_tracking_override)] = Field(
        None, description="this source only: tracking keys that replace the run's (e.g. {enabled: false})"
    )
    clips: Annotated[dict[str, Any] | None, AfterValidator(clips_override)] = Field(
        None, description="this source only: clips keys that replace the run's (e.g. {enabled: false})"
    )
    enabled: bool = Field(True, description="false: configured but not read (paused); the control API can resume it")
    roi: list[ZoneConfig] = Field(
        default_factory=list, description="regions of interest: detections whose anchor is outside every polygon are dropped"
    )
    zones: list[ZoneConfig] = Field(default_factory=list, description="polygons: zone_enter / zone_exit events, dwell")
    lines: list[LineConfig] = Field(default_factory=list, description="segments: line_cross events with direction")

    @model_validator(mode="after")
    def _unique_scene_names(self) -> SourceConfig:
        names = [item.name for item in (*self.zones, *self.lines)]
        repeated = sorted({name for name in names if names.count(name) > 1})
        if repeated:
            raise ValueError(f"zone and line names must be unique within a source: {', '.join(repeated)} repeated")
        return self

    @model_validator(mode="after")
    def _loop_files_only(self) -> SourceConfig:
        # a live source never ends by itself: looping it would mean nothing
        if self.loop and self.is_live:
            raise ValueError("loop: true is for files only; a live source reconnects by itself")
        return self

    @property
    def is_live(self) -> bool:
        return is_live_uri(self.uri) if self.live == "auto" else self.live

    @property
    def drops_oldest(self) -> bool:
        return self.is_live if self.queue == "auto" else self.queue == "drop_oldest"

    def queue_capacity(self, run_default: int) -> int:
        if self.queue_size is not None:
            return self.queue_size
        return LIVE_QUEUE_SIZE if self.is_live else run_default

    @property
    def max_age_s(self) -> float | None:
        """Age bound at the detector; files are lossless, so never for them."""
        return self.max_age_ms / 1000.0 if self.is_live and self.max_age_ms is not None else None


INPUT_STRIDE = 32  # R-CNN FPNs halve the input five times


def parse_input_size(value: Any) -> tuple[int, int]:
    """(height, width) from `[H, W]` or the flag form `HxW`; both multiples of 32."""
    if isinstance(value, str):
        parts = value.lower().split("x")
        if len(parts) != 2 or not all(p.strip().isdigit() for p in parts):
            raise ValueError(f"expected HEIGHTxWIDTH such as 384x640, got {value!r}")
        value = [int(p) for p in parts]
    if not isinstance(value, (list, tuple)) or len(value) != 2 or not all(isinstance(v, int) for v in value):
        raise ValueError("expected [height, width] (two integers)")
    height, width = value
    if height < INPUT_STRIDE or width < INPUT_STRIDE or height % INPUT_STRIDE or width % INPUT_STRIDE:
        raise ValueError(f"height and width must be positive multiples of {INPUT_STRIDE}, got {height}x{width}")
    return height, width


def input_size_flag(text: str | None) -> tuple[int, int] | None:
    """`--input-size HxW` of commands without a settings file (eval, export)."""
    if text is None:
        return None
    try:
        return parse_input_size(text)
    except ValueError as exc:
        raise ConfigError(f"--input-size {text}: {exc}") from exc


class ModelConfig(Settings):
    path: str = Field(
        DEFAULT_MODEL, description="model file, checkpoint, engine package, embedded:NAME, torchvision:NAME or arch:NAME"
    )
    weights: str | None = Field(None, description="torchvision:NAME only: a local state dict instead of the torch hub cache")
    input_size: tuple[int, int] | None = Field(
        None, description="[height, width] of the padded model input, multiples of 32; default: the model's"
    )
    device: Device = Field("cpu", description="cpu, cuda or cuda:N")
    # checked when the model loads, against engines/loading.py's one list of backends
    engine: str = Field(
        "auto", description="auto, torch, onnxruntime or tensorrt; auto: TensorRT on CUDA with plans, else ONNX Runtime "
        "(a model file's package is exported once into the cache; on CUDA without plans, PyTorch)"
    )
    score_threshold: Score | None = Field(None, description="default: the model's own")
    classes: ClassNames | None = Field(None, description="keep only these class names; default: every class")
    score_thresholds: ClassScores = Field(default_factory=dict, description="class name: its own score threshold")
    nms_iou: float = Field(0.5, gt=0, le=1, description="IoU for class-wise NMS")
    top_k: int = Field(100, ge=1, description="at most this many detections per frame")
    threads: int | None = Field(None, ge=1, description="torch intra-op threads; default: torch's")

    def thresholds(self) -> tuple[float, ...]:
        """Every score threshold set here, global and per class (the engine's floor must not exceed any)."""
        return tuple(t for t in (self.score_threshold, *self.score_thresholds.values()) if t is not None)

    @field_validator("input_size", mode="before")
    @classmethod
    def _input_size(cls, value: Any) -> Any:
        return None if value is None else parse_input_size(value)


class EngineBatchConfig(Settings):
    """The `batch` key: frames stacked into one engine call (not the `batch` command)."""

    max_batch: int = Field(1, ge=1, le=64, description="frames per engine call")
    max_wait_ms: float = Field(10.0, ge=0, description="how long to wait to fill a batch")


class MetricsConfig(Settings):
    enabled: bool = Field(True, description="record per-stage metrics; off only to measure what they cost")
    port: int | None = Field(None, ge=0, le=65535, description="serve Prometheus metrics on this port; none: off")
    # loopback by default: /metrics has no authentication, and its labels name every source
    address: str = Field(
        "127.0.0.1", description="address the metrics server listens on; 0.0.0.0 serves other machines too"
    )
    log_every_s: float | None = Field(10.0, gt=0, description="log each stage's frames/s this often; none: off")

    @model_validator(mode="after")
    def _port_needs_metrics(self) -> MetricsConfig:
        if self.port is not None and not self.enabled:
            raise ValueError("port needs enabled: true (there is nothing to serve with metrics off)")
        return self


class ApiConfig(Settings):
    """`api`: the control API, health probes, /metrics and the live page (pipeline/api/)."""

    port: int | None = Field(None, ge=0, le=65535, description="serve the API on this port (0: any free port, logged); none: off")
    # loopback by default: the API can add and remove cameras
    address: str = Field("127.0.0.1", description="address to listen on; any but loopback needs a token")
    token: str | None = Field(None, description="bearer token; default: $DETSTREAM_API_TOKEN; required off loopback")
    state_file: Path | None = Field(None, description="runtime changes saved here atomically and restored at the next start")
    max_body_bytes: int = Field(65536, ge=1024, description="largest request body accepted")
    preview_fps: float = Field(5.0, gt=0, le=30, description="at most this many annotated frames per second per watched camera")


class RunConfig(Settings):
    sources: list[SourceConfig] = Field(default_factory=list)
    model: ModelConfig = Field(default_factory=ModelConfig)
    batch: EngineBatchConfig = Field(default_factory=EngineBatchConfig)
    sinks: list[str] = Field(default_factory=list, description="jsonl:PATH (- for stdout), video:PATH.mp4, redis://..., webhook:https://..., mqtt://...")
    queue_size: int = Field(8, ge=1, description="capacity of every queue between stages")
    max_frames: int | None = Field(None, ge=1, description="stop each source after N frames")
    shutdown_timeout_s: float = Field(3.0, gt=0, description="grace period to drain on Ctrl-C")
    metrics: MetricsConfig = Field(default_factory=MetricsConfig)
    tracking: TrackingConfig = Field(default_factory=TrackingConfig)
    api: ApiConfig = Field(default_factory=ApiConfig)
    clips: ClipsConfig = Field(default_factory=ClipsConfig)

    @field_validator("sources", mode="before")
    @classmethod
    def _uri_shorthand(cls, value: Any) -> Any:
        # A bare string in the sources list means {uri: that string}.
        if isinstance(value, list):
            return [{"uri": v} if isinstance(v, str) else v for v in value]
        return value

    @model_validator(mode="after")
    def _clips_of_each_source(self) -> RunConfig:
        """Each source's clips settings merged over the run's, and the zone and line names
        their rules give, against the zones and lines of the sources they apply to."""
        shared = []  # the sources that take the run's rules
        for index, source in enumerate(self.sources):
            try:
                clips = self.source_clips(source)
            except ValidationError as exc:
                raise ValueError(f"sources.{index}.clips: {exc.errors()[0]['msg'].removeprefix('Value error, ')}") from None
            if not clips.enabled:
                continue
            if source.clips and "rules" in source.clips:
                check_rule_places(clips, [source.zones], [source.lines], f"sources.{index}.clips")
            else:
                shared.append(source)
        if shared:
            check_rule_places(self.clips, [s.zones for s in shared], [s.lines for s in shared], "clips")
        return self

    def source_clips(self, source: SourceConfig) -> ClipsConfig:
        """The clips settings of `source`: its own keys over the run's."""
        if not source.clips:
            return self.clips
        return ClipsConfig.model_validate({**self.clips.model_dump(), **source.clips})

    def source_model(self, source: SourceConfig) -> ModelConfig:
        """The model settings that apply to `source`: its own class and score keys where set."""
        own = {key: getattr(source, key) for key in SOURCE_SELECTION_KEYS if getattr(source, key) is not None}
        return self.model.model_copy(update=own) if own else self.model

    def source_tracking(self, source: SourceConfig) -> TrackingConfig:
        """The tracking settings of `source`: its own keys over the run's."""
        return self.tracking.model_copy(update=source.tracking) if source.tracking else self.tracking

    def thresholds(self) -> tuple[float, ...]:
        """Every score threshold set, for the model and for each source.

        The engine's score floor must be the lowest of them all, or a threshold below
        the global one would never see its candidates.
        """
        scopes = [self.model, *(self.source_model(source) for source in self.sources)]
        return tuple(t for scope in scopes for t in scope.thresholds())

    def low_floor(self) -> float | None:
        """The lowest tracker low score among tracked sources (the run's own when the API may
        add sources later); None when nothing is tracked. Candidates down to it are produced
        for the trackers, without masks (engines/loading.py)."""
        trackings = [*map(self.source_tracking, self.sources), self.tracking]
        return min((t.low_score for t in trackings if t.enabled), default=None)

    # sink URIs are checked by their kind's module (stages/sinks/registry.py), before the
    # model loads: the one list of sink kinds lives there


def _settings_class_at(root: type[BaseModel], loc: tuple[Any, ...]) -> type[BaseModel] | None:
    """The settings class that owns the field at `loc` (for listing allowed keys)."""
    cls = root
    for part in loc[:-1]:
        if isinstance(part, int):
            continue
        field = cls.model_fields.get(str(part))
        if field is None:
            return None
        annotation = field.annotation
        inner = getattr(annotation, "__args__", (annotation,))
        nested = [a for a in inner if isinstance(a, type) and issubclass(a, BaseModel)]
        if not nested:
            return None
        cls = nested[0]
    return cls


def _flag_of(loc: tuple[Any, ...], flags: Mapping[str, str]) -> str | None:
    """The flag that set the value at `loc` (or a list or mapping holding it), if a flag did."""
    parts = [str(p) for p in loc]
    for end in range(len(parts), 0, -1):
        flag = flags.get(".".join(parts[:end]))
        if flag:
            return flag
    return None


def _describe(root: type[BaseModel], error: ValidationError, origin: str, flags: Mapping[str, str] = {}) -> str:
    lines = []
    for item in error.errors():
        key = ".".join(str(p) for p in item["loc"])
        flag = _flag_of(item["loc"], flags)
        if item["type"] == "extra_forbidden":
            owner = _settings_class_at(root, item["loc"])
            allowed = ", ".join(owner.model_fields) if owner else "?"
            lines.append(f"{origin}: unknown key {key!r} (allowed here: {allowed})")
        elif item["type"] == "missing":
            lines.append(f"{origin}: {key} is required")
        elif flag:
            msg = item["msg"].removeprefix("Value error, ")
            lines.append(f"{flag} {item['input']}: {msg}")
        elif not key:  # a check across keys: its message names them
            lines.append(f"{origin}: {item['msg'].removeprefix('Value error, ')}")
        else:
            msg = item["msg"].removeprefix("Value error, ")
            lines.append(f"{origin}: {key} = {item['input']!r}: {msg}")
    # an error on a whole source entry shows its uri, which may carry credentials
    return redact("\n".join(lines))


def load_config(
    path: Path | None = None, overrides: dict[str, Any] | None = None, flags: Mapping[str, str] | None = None
) -> RunConfig:
    """Run settings: read YAML (if given), apply CLI overrides (dotted keys), validate."""
    return load_settings(RunConfig, path, overrides, flags)


def load_settings(
    root: type[S],
    path: Path | None = None,
    overrides: dict[str, Any] | None = None,
    flags: Mapping[str, str] | None = None,
) -> S:
    """Settings of class `root` from YAML (if given) and CLI overrides (dotted keys).

    An override whose value is None is a flag that was not given: the file's value stays.
    `flags` names the flag behind each override key (`batch.max_batch` -> `--max-batch`):
    an error in a value a flag gave names the flag, not the key.
    """
    data: dict[str, Any] = {}
    origin = str(path) if path else "flags"
    if path is not None:
        try:
            loaded = load_yaml(Path(path).read_text())
        except FileNotFoundError as exc:
            raise ConfigError(f"config file not found: {path}") from exc
        except IsADirectoryError as exc:
            raise ConfigError(f"{path}: a folder, not a config file") from exc
        except UnicodeDecodeError as exc:
            raise ConfigError(f"{path}: not a text file (not UTF-8 at byte {exc.start})") from exc
        except OSError as exc:  # permission denied, a device that cannot be read, ...
            raise ConfigError(f"{path}: cannot read: {exc.strerror or exc}") from exc
        except yaml.YAMLError as exc:
            raise ConfigError(_yaml_error(path, exc)) from exc
        except YamlLimitError as exc:
            raise ConfigError(f"{path}: {exc}") from exc
        if loaded is not None and not isinstance(loaded, dict):
            raise ConfigError(f"{path}: expected a mapping of settings, got {type(loaded).__name__}")
        data = loaded or {}
    for dotted, value in (overrides or {}).items():
        if value is None:
            continue
        target = data
        *parents, leaf = dotted.split(".")
        for part in parents:
            target = target.setdefault(part, {})
            if not isinstance(target, dict):
                raise ConfigError(f"{origin}: {part} must be a mapping to set {dotted}")
        target[leaf] = value
    given = {key: flag for key, flag in (flags or {}).items() if (overrides or {}).get(key) is not None}
    return parse_settings(root, data, origin, given)


def parse_settings(root: type[S], data: Any, origin: str, flags: Mapping[str, str] = {}) -> S:
    """Settings of class `root` from plain data (a mapping read from a file, a request body).

    A bad value is a ConfigError whose message starts with `origin` and names the key,
    and whose `field` is the dotted key of the first problem (e.g. `stride`, `reconnect.max_s`).
    """
    try:
        return root.model_validate(data)
    except ValidationError as exc:
        first = ".".join(str(part) for part in exc.errors()[0]["loc"]) or None
        raise ConfigError(_describe(root, exc, origin, flags), field=first) from exc


def _yaml_error(path: Path, exc: yaml.YAMLError) -> str:
    """`FILE:LINE:COLUMN: not valid YAML: problem` (PyYAML's own text names "<unicode string>")."""
    mark = getattr(exc, "problem_mark", None)
    where = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark is not None else str(path)
    problem = getattr(exc, "problem", None) or str(exc)
    context = getattr(exc, "context", None)
    return f"{where}: not valid YAML: {problem}" + (f" ({context})" if context else "")
