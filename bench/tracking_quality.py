"""How well the trackers follow objects on held-out synthetic clips (issue #16): IDF1, MOTA,
HOTA and ID switches from `detstream eval-track`'s scoring (pipeline/track_eval/), and the
counts of two counting lines against the ground truth's.

The clips come from the synth generator (`synth.video.write_video`, as `detstream synth
video` writes them: 1280x720, 25 frames/s, 10 s) with seeds 9111-9118 and 9151-9166, which
nothing else uses: not the tests, the configs, the Makefile (demo 7, training datasets 1-3)
nor the generator's defaults. Why 24 clips: with the first 8 (9111-9118, the held-out set
until 2026-12-07) a direction of a line has about 28 crossings, so one crossing more or
less is 3.6 % and two decide the 5 % target; 24 clips give about 85 per direction. The
16 were added before any held-out clip saw the line rules of that day (the hold, the
whole-box rule, the amodal reference). Seeds 9101-9108, 9121-9128 and 9131-9146 served
while developing the tracker and its line rules (9101-9104 to find why counts went wrong,
9105-9108 to choose `tracking.confirm_score` and the lines' band, 9121-9128 and 9131-9146
to find and fix the remaining count errors), so they are not held out any more and are
not used here. Each clip runs through the pipeline four times, as `detstream
eval-track` does (`evaluate` with the settings `tracking_config` makes): ByteTrack and the
IoU baseline, every frame and every 3rd frame, on the default model's ONNX Runtime
package, loaded once and passed to every run. The source has three vertical lines (at a
quarter, half and three quarters of the width) and a horizontal one at 3/4 of its height
that people mostly walk along (bench.common.COUNTING_LINES).

Means are over the clips (each clip weighs the same); line counts are summed over the
clips and the classes, per line and direction, against the ground-truth tracks' own
crossings (counted by the same Scene). The issue's targets travel with the result; the
report says whether they are met.

    .venv/bin/python -m bench.tracking_quality [--clips 4] [--seconds 10] [--json out.json]
        [--model MODEL] [--development]

`--model` scores another model than the default; `--development` runs on the development
clips 9121-9128 and 9131-9146 instead of the held-out ones, so that choosing between
candidate models or rules does not spend the held-out clips (only the chosen one should
see them).
"""

from __future__ import annotations

import argparse
import math
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING

from bench.common import COUNTING_LINES, as_package, machine, print_result

if TYPE_CHECKING:
    from engines.base import Engine
    from pipeline.core.config import RunConfig
    from pipeline.track_eval.evaluate import TrackEvalReport

SEEDS = (*range(9111, 9119), *range(9151, 9167))
DEVELOPMENT_SEEDS = "9101-9108, 9121-9128 and 9131-9146"  # looked at while developing the tracker: not held out
DEVELOPMENT_CLIPS = (*range(9121, 9129), *range(9131, 9147))  # `--development`: for choosing between candidates
WIDTH, HEIGHT, FPS = 1280, 720, 25
METHODS = ("bytetrack", "iou")
STRIDES = (1, 3)
METRICS = ("idf1", "mota", "hota", "id_switches")
# issue #16: at full rate IDF1 >= 0.80 and MOTA >= 0.70; IDF1 at stride 3 at most 0.05 below
# it; line counts within 5 % per direction; better than the IoU baseline
TARGETS = {"idf1": 0.80, "mota": 0.70, "idf1_drop": 0.05, "line_error": 0.05}


def make_clips(folder: Path, seeds: tuple[int, ...], seconds: float) -> list[Path]:
    """The held-out clips and their ground truth (CLIP.json next to CLIP.mp4)."""
    from synth.video import write_video

    clips = []
    for seed in seeds:
        path = folder / f"clip-{seed}.mp4"
        write_video(path, seed=seed, width=WIDTH, height=HEIGHT, fps=FPS, seconds=seconds)
        clips.append(path)
    return clips


def run_config(clip: Path, package: str, method: str, stride: int) -> RunConfig:
    """eval-track's settings for `clip`: one source with the counting lines."""
    from pipeline.track_eval.evaluate import tracking_config

    source = {"uri": str(clip), "lines": COUNTING_LINES}
    return tracking_config(clip, None, {"model.path": package, "sources": [source]}, {}, stride, method)


def load(config: RunConfig) -> Engine:
    """The engine as `detstream run` loads it for `config` (its score floor included)."""
    from engines.loading import load_engine

    m = config.model
    return load_engine(m.path, m.device, m.score_threshold, m.threads, m.engine, other_thresholds=config.thresholds(),
                       low_floor=config.low_floor())


def finite(value: float) -> float | None:
    """A figure rounded for the report; NaN (a ratio of nothing) as None."""
    return None if math.isnan(value) else round(value, 4)


def run_row(clip: Path, report: TrackEvalReport, elapsed_s: float) -> dict:
    score = report.score
    directions: dict[tuple[str, str], list[int]] = {}
    for row in report.lines:  # per class: summed over classes
        counts = directions.setdefault((row.line, row.direction), [0, 0])
        counts[0] += row.truth
        counts[1] += row.tracked
    return {
        "clip": clip.name,
        "method": report.tracker,
        "stride": report.stride,
        "idf1": finite(score.idf1),
        "mota": finite(score.mota),
        "hota": finite(score.hota),
        "id_switches": score.id_switches,
        "frames": score.frames,
        "gt_objects": score.gt_objects,
        "elapsed_s": round(elapsed_s, 1),
        "lines": [{"line": line, "direction": direction, "truth": truth, "tracked": tracked}
                  for (line, direction), (truth, tracked) in directions.items()],
    }


def mean(values: list[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return round(statistics.fmean(present), 4) if present else None


def summarise(runs: list[dict]) -> tuple[list[dict], dict[str, float | None], list[dict]]:
    """Means per method and stride, each method's IDF1 drop from stride 1 to 3, and line
    counts per method, stride, line and direction summed over the clips."""
    from pipeline.core.scene_config import LineConfig

    means = []
    for method in METHODS:
        for stride in STRIDES:
            mine = [r for r in runs if r["method"] == method and r["stride"] == stride]
            means.append({"method": method, "stride": stride, **{k: mean([r[k] for r in mine]) for k in METRICS}})
    by = {(m["method"], m["stride"]): m for m in means}
    drops = {}
    for method in METHODS:
        full, thinned = by[(method, STRIDES[0])]["idf1"], by[(method, STRIDES[-1])]["idf1"]
        drops[method] = None if full is None or thinned is None else round(full - thinned, 4)
    counts = []
    for method in METHODS:
        for stride in STRIDES:
            for line in COUNTING_LINES:
                for direction in LineConfig.model_validate(line).directions:
                    rows = [c for r in runs if r["method"] == method and r["stride"] == stride for c in r["lines"]
                            if c["line"] == line["name"] and c["direction"] == direction]
                    truth, tracked = sum(c["truth"] for c in rows), sum(c["tracked"] for c in rows)
                    error = round((tracked - truth) / truth, 4) if truth else None
                    counts.append({"method": method, "stride": stride, "line": line["name"], "direction": direction,
                                   "truth": truth, "tracked": tracked, "error": error})
    return means, drops, counts


def measure(workdir: Path, clips: int = len(SEEDS), seconds: float = 10.0, model: str | None = None,
            development: bool = False) -> dict:
    from pipeline.core.config import DEFAULT_MODEL
    from pipeline.track_eval.evaluate import evaluate
    from pipeline.track_eval.referee import DontCare

    model = model or DEFAULT_MODEL
    package = as_package(model, workdir)
    seeds = (DEVELOPMENT_CLIPS if development else SEEDS)[:clips]
    runs = []
    with tempfile.TemporaryDirectory(dir=workdir) as tmp:
        started = time.monotonic()
        videos = make_clips(Path(tmp), seeds, seconds)
        generate_s = time.monotonic() - started
        engine = load(run_config(videos[0], package, METHODS[0], STRIDES[0]))
        for clip in videos:
            for method in METHODS:
                for stride in STRIDES:
                    started = time.monotonic()
                    report = evaluate(clip, clip.with_suffix(".json"), run_config(clip, package, method, stride),
                                      DontCare(), engine=engine)
                    row = run_row(clip, report, time.monotonic() - started)
                    runs.append(row)
                    print(f"{clip.name} {method} stride {stride}: IDF1 {row['idf1']}, MOTA {row['mota']}, "
                          f"HOTA {row['hota']}, {row['id_switches']} ID switches ({row['elapsed_s']:.0f} s)",
                          file=sys.stderr, flush=True)
    means, drops, counts = summarise(runs)
    rule = DontCare()
    return {
        "model": model,
        "engine": type(engine).__name__,
        "seeds": list(seeds),
        "development_seeds": DEVELOPMENT_SEEDS,
        "size": [WIDTH, HEIGHT],
        "fps": FPS,
        "seconds": seconds,
        "generate_s": round(generate_s, 1),
        "lines": COUNTING_LINES,
        "dont_care": {"min_height": rule.min_height, "max_occluded": rule.max_occluded},
        "runs": runs,
        "means": means,
        "idf1_drop": drops,
        "line_counts": counts,
        "targets": TARGETS,
    }


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.tracking_quality", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clips", type=int, default=len(SEEDS), choices=range(1, len(SEEDS) + 1))
    parser.add_argument("--seconds", type=float, default=10.0, help="length of each clip")
    parser.add_argument("--json", type=Path)
    parser.add_argument("--model", help="model to score (default: the default model)")
    parser.add_argument("--development", action="store_true",
                        help="the development clips 9121-9128 and 9131-9146 instead of the held-out ones "
                        "(to choose between models or rules)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        result = measure(Path(tmp), args.clips, args.seconds, args.model, args.development)
    print_result({"machine": machine(), **result}, args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
