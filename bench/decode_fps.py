"""Decode frames/s: detstream's decode stage against `ffmpeg -benchmark` decoding the same
file to null (the practical limit on this machine), with and without RGB conversion.

The stage always converts to RGB (`frame.to_ndarray(format="rgb24")` in stages/reader.py),
so "without conversion" times the stage's own PyAV path (`open_source`, the same thread
settings, demux + decode) without that call; "with conversion" runs the real `Decoder`
stage in this thread, its frames thrown away instead of queued. Both sides use FFmpeg's
automatic thread count (frame + slice threads): PyAV's `thread_type = "AUTO"` as the stage
sets it, `-threads 0` for the CLI. Methods alternate over rounds; medians are printed.

    .venv/bin/python -m bench.decode_fps [VIDEO ...] [--rounds 3]
"""

from __future__ import annotations

import argparse
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Callable

import av

from bench.common import DEMO_VIDEO, machine, print_result
from pipeline.core.config import SourceConfig
from pipeline.core.context import RunContext
from stages.decode import Decoder
from stages.reader import open_source


class _DiscardMux:
    """Stands in for the stage's queue: takes every frame at once and drops it."""

    def put(self, source: str, item: Any) -> None:
        return None

    def close(self, source: str) -> None:
        pass


def stage_fps(video: Path) -> float:
    """The decode stage itself: PyAV decode, RGB conversion, rotation, Frame objects."""
    stage = Decoder(SourceConfig(uri=str(video)), "bench", _DiscardMux(), RunContext())  # type: ignore[arg-type]
    started = time.perf_counter()
    stage.run()  # in this thread: no hand-off cost is timed
    return stage.frames / (time.perf_counter() - started)


def pyav_fps(video: Path) -> float:
    """The stage's PyAV path without the RGB conversion: decoded YUV frames are dropped."""
    started = time.perf_counter()
    container = open_source(str(video), "bench")
    frames = 0
    try:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"  # as stages/reader.py for files
        for packet in container.demux(stream):
            frames += len(packet.decode())
    finally:
        container.close()
    return frames / (time.perf_counter() - started)


def ffmpeg_fps(video: Path, rgb: bool) -> float:
    """`ffmpeg -benchmark` to the null muxer; frames / real time from its own report."""
    convert = ["-pix_fmt", "rgb24"] if rgb else []
    result = subprocess.run(
        ["ffmpeg", "-hide_banner", "-nostdin", "-benchmark", "-threads", "0", "-i", str(video), *convert, "-f", "null", "-"],
        capture_output=True, text=True, check=True,
    )
    # progress lines end with \r; the last "frame=" is the total, "bench: ... rtime=" the wall time
    frames = int(re.findall(r"frame=\s*(\d+)", result.stderr)[-1])
    rtime = float(re.search(r"bench: utime=[\d.]+s stime=[\d.]+s rtime=([\d.]+)s", result.stderr).group(1))
    return frames / rtime


METHODS: dict[str, Callable[[Path], float]] = {
    "ffmpeg -f null (no conversion)": lambda v: ffmpeg_fps(v, rgb=False),
    "detstream PyAV path, no conversion": pyav_fps,
    "ffmpeg -pix_fmt rgb24 -f null": lambda v: ffmpeg_fps(v, rgb=True),
    "detstream decode stage (rgb24)": stage_fps,
}


def ffmpeg_version() -> str:
    first = subprocess.run(["ffmpeg", "-version"], capture_output=True, text=True, check=True).stdout.split("\n")[0]
    return first.split()[2]


def video_info(video: Path) -> dict:
    with av.open(str(video)) as container:
        stream = container.streams.video[0]
        return {"path": str(video), "size": f"{stream.width}x{stream.height}", "codec": stream.codec_context.name,
                "frames": stream.frames, "fps": float(stream.average_rate or 0)}


def measure(videos: list[Path], rounds: int) -> dict:
    rows = []
    for video in videos:
        fps: dict[str, list[float]] = {name: [] for name in METHODS}
        for _ in range(rounds):
            for name, method in METHODS.items():
                fps[name].append(method(video))
        median = {name: statistics.median(values) for name, values in fps.items()}
        rows.append({
            **video_info(video),
            "fps_median": {name: round(value, 1) for name, value in median.items()},
            "fps_runs": {name: [round(v, 1) for v in values] for name, values in fps.items()},
            "ratio_no_conversion": round(median["detstream PyAV path, no conversion"] / median["ffmpeg -f null (no conversion)"], 3),
            "ratio_rgb24": round(median["detstream decode stage (rgb24)"] / median["ffmpeg -pix_fmt rgb24 -f null"], 3),
        })
    return {"videos": rows, "rounds": rounds, "ffmpeg_cli": ffmpeg_version(),
            "pyav": av.__version__, "pyav_libavcodec": ".".join(map(str, av.library_versions["libavcodec"])),
            "threads": "FFmpeg automatic (frame + slice threads): PyAV thread_type AUTO, ffmpeg -threads 0"}


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.decode_fps", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("videos", nargs="*", type=Path, default=[DEMO_VIDEO])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    print_result({"machine": machine(), **measure(args.videos, args.rounds)}, args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
