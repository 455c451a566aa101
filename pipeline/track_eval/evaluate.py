"""`detstream eval-track`: one annotated video through the pipeline with tracking, then scored.

Rules:
- The run is an ordinary `pipeline.run.runner.run` with one source, the video (the config
  file's one source, if it has one, keeps its settings: classes, zones, lines...), tracking
  on, and one JSON-lines sink in a temporary folder; the config's own sinks are not used.
- Inputs are checked before the model loads: the video opens, the annotations list its
  frames with track ids, and the two have the same number of frames.
- With lines on the source, their crossings by the ground-truth tracks (counted by the
  pipeline's own Scene, pipeline/track_eval/lines.py) are compared with the run's
  `line_cross` events.
- Only a complete, clean run is scored: a failed stage or source, a signal, or frames the
  decoder had to skip (which would shift every later frame against the ground truth) are
  errors.
"""

from __future__ import annotations

import tempfile
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import av

from engines.base import Engine
from pipeline.core.config import RunConfig, load_config
from pipeline.core.context import RunContext
from pipeline.core.errors import ConfigError, DatasetError, DetstreamError
from pipeline.run.runner import RunSummary, run, source_names
from pipeline.track_eval.lines import Key, LineCount, compare_lines, tracked_crossings, truth_crossings
from pipeline.track_eval.predictions import read_tracked
from pipeline.track_eval.referee import DontCare, TrackScore, score
from pipeline.track_eval.truth import GroundTruth, load_truth
from stages.reader import open_source
from stages.sinks.jsonl import events_path


@dataclass(frozen=True)
class TrackEvalReport:
    video: Path
    annotations: Path
    tracker: str  # tracking.method of the run
    stride: int
    rule: DontCare
    classes: tuple[str, ...]  # the classes scored
    score: TrackScore
    line_names: tuple[str, ...]  # the source's lines
    lines: list[LineCount]  # their crossings by direction and class: ground truth vs run (0 and 0 left out)


def count_frames(video: Path) -> int:
    """Frames of the video's first video stream (declared by the container, else counted)."""
    container = open_source(str(video), video.name)
    try:
        stream = container.streams.video[0]
        return stream.frames or sum(1 for packet in container.demux(stream) if packet.size)
    except (IndexError, av.FFmpegError) as exc:
        raise DetstreamError(f"{video}: cannot count its video frames: {exc}") from exc
    finally:
        container.close()


def tracking_config(
    video: Path,
    config_path: Path | None,
    overrides: Mapping[str, Any],
    flags: Mapping[str, str],
    stride: int | None,
    tracker: str | None,
) -> RunConfig:
    """The run settings: the file's (if any) and the flags', with `video` as the one source."""
    base = load_config(config_path, dict(overrides), flags)
    if len(base.sources) > 1:
        raise ConfigError(f"{config_path}: lists {len(base.sources)} sources; eval-track scores one video at a time")
    source = base.sources[0].model_dump(exclude_unset=True) if base.sources else {}
    source["uri"] = str(video)
    if stride is not None:
        source["stride"] = stride
    tracking = dict(source.get("tracking") or {})
    tracking["enabled"] = True  # scoring the tracker is the point: on whatever the file says
    if tracker is not None:
        tracking["method"] = tracker
    source["tracking"] = tracking
    run_tracking = {"tracking.enabled": True, "tracking.method": tracker}
    return load_config(config_path, {**overrides, **run_tracking, "sources": [source]}, flags)


def _check_run(summary: RunSummary, video: str) -> None:
    problems = [*(f"source {s!r}: {r}" for s, r in summary.source_errors.items()),
                *(f"stage {s}: {r}" for s, r in summary.stage_errors.items())]
    if summary.signal:
        problems.append(f"stopped by {summary.signal}")
    skipped = summary.health.get(video, {}).get("decode_errors", 0)
    if skipped:
        problems.append(f"{skipped} frames could not be decoded, so later frames no longer line up with the annotations")
    if problems:
        raise DetstreamError("the run was not complete, nothing scored: " + "; ".join(problems))


def evaluate(
    video: Path,
    annotations: Path,
    config: RunConfig,
    rule: DontCare = DontCare(),
    engine: Engine | None = None,
    ctx: RunContext | None = None,
) -> TrackEvalReport:
    """Check the inputs, run `video` through the pipeline (settings `config`, whose one
    source is the video) and score its tracks against `annotations`."""
    frames = count_frames(video)
    truth = load_truth(annotations, video.name)
    if len(truth.frames) != frames:
        raise DatasetError(annotations, [f"lists {len(truth.frames)} frames of {video.name}, the video has {frames}"])
    source = config.sources[0]
    classes = _scored_classes(truth, config.source_model(source).classes)
    reference: Counter[Key] = Counter()
    if source.lines:
        if truth.size is None:
            raise DatasetError(annotations, ["images of the video give no width and height: lines cannot be placed"])
        reference = truth_crossings(truth, source.lines, truth.size)
    with tempfile.TemporaryDirectory(prefix="detstream-eval-track-") as folder:
        messages = Path(folder) / f"{video.stem}.jsonl"
        summary = run(config.model_copy(update={"sinks": [f"jsonl:{messages}"]}), engine=engine, ctx=ctx)
        _check_run(summary, source_names(config.sources)[0])
        predicted = read_tracked(messages, source.stride, truth)
        tracked = tracked_crossings(events_path(messages))
    return TrackEvalReport(
        video=video,
        annotations=annotations,
        tracker=config.source_tracking(source).method,
        stride=source.stride,
        rule=rule,
        classes=classes,
        score=score(truth.frames, predicted, classes, rule),
        line_names=tuple(line.name for line in source.lines),
        lines=compare_lines(source.lines, reference, tracked, classes),
    )


def _scored_classes(truth: GroundTruth, selected: tuple[str, ...] | None) -> tuple[str, ...]:
    """The annotations' classes, narrowed to the model's selected classes when it has some."""
    if selected is None:
        return truth.classes
    classes = tuple(c for c in truth.classes if c in selected)
    if not classes:
        raise ConfigError(
            f"classes {', '.join(selected)}: none is a category of {truth.path} ({', '.join(truth.classes)}): nothing to score"
        )
    return classes
