"""Settings of `detstream batch`: the run's model and batching, plus what batch adds.

Same rules as the run config: YAML holds values only, flags override the file, every
key has a default. `fingerprint` is what, besides the model, decides a file's results:
a file finished under another fingerprint is processed again.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path, PurePosixPath
from typing import Any, Literal

from pydantic import Field

from pipeline.batch.collection import VIDEO_EXTENSIONS
from pipeline.core.errors import ConfigError
from pipeline.core.coco_files import video_image_ids
from pipeline.core.config import EngineBatchConfig, ModelConfig, Settings, TrackingConfig, load_settings
from pipeline.core.scene_config import LineConfig, ZoneConfig


class RaySettings(Settings):
    address: str | None = Field(None, description="cluster to join; none: RAY_ADDRESS, else a local one")
    cpus_per_worker: float = Field(1.0, gt=0, description="CPUs each pipeline instance reserves")
    gpus_per_worker: float | None = Field(None, ge=0, description="GPUs each reserves; default 1 on cuda, else 0")
    workers: int | None = Field(None, ge=1, description="pipeline instances; default: as many as the cluster's resources hold")
    max_attempts: int = Field(3, ge=1, description="tries per file when workers die under it")


class BatchSettings(Settings):
    model: ModelConfig = Field(default_factory=ModelConfig)
    # frames per engine call; default: the number of decoders (one frame of each open file)
    batch: EngineBatchConfig | None = None
    decoders: int = Field(2, ge=1, le=64, description="files decoded at once, feeding the one detector")
    format: Literal["jsonl", "coco"] = Field("jsonl", description="per-file results: detection messages or COCO results")
    video: bool = Field(False, description="also write an annotated MP4 per file")
    extensions: list[str] = Field(default_factory=lambda: list(VIDEO_EXTENSIONS), description="directory scan filter")
    stride: int = Field(1, ge=1, description="keep every Nth decoded frame")
    max_fps: float | None = Field(None, gt=0, description="keep at most this many frames per stream second")
    max_frames: int | None = Field(None, ge=1, description="stop each file after N frames")
    ground_truth: Path | None = Field(
        None, description="COCO file listing the videos' frames as images VIDEO#N: COCO results take its image ids"
    )
    queue_size: int = Field(8, ge=1, description="capacity of every queue between stages")
    shutdown_timeout_s: float = Field(3.0, gt=0, description="grace period to drain on Ctrl-C")
    ray: RaySettings = Field(default_factory=RaySettings)
    tracking: TrackingConfig = Field(default_factory=TrackingConfig)
    zones: list[ZoneConfig] = Field(default_factory=list, description="every file's zones (normalized fits any size)")
    lines: list[LineConfig] = Field(default_factory=list, description="every file's lines (normalized fits any size)")

    @property
    def engine_batch(self) -> EngineBatchConfig:
        """The `batch` setting (frames per engine call), else one frame of each open file."""
        return self.batch or EngineBatchConfig(max_batch=self.decoders)

    def thresholds(self) -> tuple[float, ...]:
        """Every score threshold the engine's floor must allow for emitted detections."""
        return self.model.thresholds()

    def low_floor(self) -> float | None:
        """The tracker's low score when tracking is on (engines/loading.py: candidates
        down to it, without masks)."""
        return self.tracking.low_score if self.tracking.enabled else None

    @property
    def gpus_per_worker(self) -> float:
        if self.ray.gpus_per_worker is not None:
            return self.ray.gpus_per_worker
        return 1.0 if self.model.device.startswith("cuda") else 0.0

    def fingerprint(self) -> str:
        """Hash of the settings that change a file's results (not of speed settings)."""
        decisive: dict[str, Any] = {
            "engine": self.model.engine,
            "score_threshold": self.model.score_threshold,
            "nms_iou": self.model.nms_iou,
            "top_k": self.model.top_k,
            "format": self.format,
            "video": self.video,
            "stride": self.stride,
            "max_fps": self.max_fps,
            "max_frames": self.max_frames,
        }
        # only when set, so files finished before these keys existed keep their fingerprint
        if self.model.classes is not None:
            decisive["classes"] = sorted(set(self.model.classes))
        if self.model.score_thresholds:
            decisive["score_thresholds"] = self.model.score_thresholds
        if self.model.input_size is not None:
            decisive["input_size"] = list(self.model.input_size)
        if self.tracking.enabled:  # track ids and events are part of the results
            decisive["tracking"] = self.tracking.model_dump()
            decisive["scene"] = [shape.model_dump() for shape in (*self.zones, *self.lines)]
        if self.ground_truth is not None and self.format == "coco":
            decisive["ground_truth"] = hashlib.sha256(self.ground_truth.read_bytes()).hexdigest()
        return hashlib.sha256(json.dumps(decisive, sort_keys=True).encode()).hexdigest()[:16]

    def ground_truth_ids(self) -> GroundTruthIds | None:
        return GroundTruthIds(self.ground_truth) if self.ground_truth is not None else None


class GroundTruthIds:
    """The image ids a ground-truth COCO file gives a batch file's frames.

    The file's frame seq N is image `NAME#N`, NAME being the file's path relative to its
    input (as in the output folder) or else its file name alone; both are relative to the
    COCO file's image folder, as `detstream eval` reads them.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self.ids = video_image_ids(path)

    def __call__(self, rel: str) -> dict[int, int] | None:
        return self.ids.get(rel) or self.ids.get(PurePosixPath(rel).name)

    def check(self, rels: list[str], stride: int, max_fps: float | None) -> None:
        """Raise a ConfigError unless every file's frames are images of the file."""
        if stride != 1 or max_fps is not None:
            raise ConfigError(
                f"ground_truth {self.path}: frame seq N is frame N of the video only with stride 1 and no max_fps"
            )
        missing = [rel for rel in rels if self(rel) is None]
        if missing:
            raise ConfigError(
                f"ground_truth {self.path} lists no frames (images 'NAME#N') of {', '.join(missing[:3])}"
                + (f" and {len(missing) - 3} more" if len(missing) > 3 else "")
            )


def load_batch_settings(
    path: Path | None = None, overrides: dict[str, Any] | None = None, flags: dict[str, str] | None = None
) -> BatchSettings:
    return load_settings(BatchSettings, path, overrides, flags)
