"""`detstream synth video|dataset`: write sample clips and training sets from the command line.

Building the parser imports no renderer: OpenCV, NumPy and PyAV load inside `run_video` /
`run_dataset`, so `detstream --help` stays fast.
"""

from __future__ import annotations

import argparse
import math
import re
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import NoReturn

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Register `synth` with its `video` and `dataset` sub-commands."""
    parser = subparsers.add_parser(
        "synth", help="generate synthetic camera clips and image datasets with exact ground truth",
        description="Synthetic scenes (person, car, bicycle, dog) with COCO ground truth.")
    commands = parser.add_subparsers(dest="synth_command", metavar="{video,dataset}", required=True,
                                     parser_class=_OneLineErrors)

    video = commands.add_parser(
        "video", help="write an H.264 MP4 clip and its COCO JSON",
        description="Write OUT.mp4 and OUT.json (one COCO image per frame, track ids on annotations).")
    video.add_argument("out", type=Path, help="output .mp4 path; the COCO JSON is written next to it")
    video.add_argument("--seed", type=int, default=0, help="scene seed (default: 0)")
    video.add_argument("--size", type=_size, default=(1280, 720), metavar="WxH", help="frame size (default: 1280x720)")
    video.add_argument("--fps", type=_positive_int, default=25, help="frames per second (default: 25)")
    video.add_argument("--seconds", type=_positive_float, default=10.0, help="clip length (default: 10)")
    video.add_argument("--objects", type=_count(0, 50), default=6,
                       help="objects moving at once, 0-50 (default: 6)")
    video.add_argument("--crf", type=_count(0, 51), default=18, help="x264 quality, lower is better (default: 18)")
    video.set_defaults(func=run_video)

    dataset = commands.add_parser(
        "dataset", help="write a still-image COCO dataset",
        description="Write OUT_DIR/images/*.jpg and OUT_DIR/annotations.json, each image a new random scene.")
    dataset.add_argument("out_dir", type=Path, help="output directory")
    dataset.add_argument("--seed", type=int, default=0, help="dataset seed (default: 0)")
    dataset.add_argument("--count", type=_count(1, 10_000_000), default=500, help="number of images (default: 500)")
    dataset.add_argument("--size", type=_size, default=(640, 360), metavar="WxH", help="image size (default: 640x360)")
    dataset.add_argument("--max-objects", type=_count(1, 50), default=8,
                         help="most objects per image, 1-50 (default: 8)")
    dataset.set_defaults(func=run_dataset)


class _OneLineErrors(argparse.ArgumentParser):
    """Argument errors as one line on stderr (exit code 2) instead of usage + error."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


def run_video(args: argparse.Namespace) -> int:
    import av

    from synth.video import check_video_args, frame_count, write_video

    out: Path = args.out
    width, height = args.size
    try:
        check_video_args(width, height, args.fps, args.seconds, args.objects)
        if out.suffix.lower() != ".mp4":
            raise ValueError(f"output must be an .mp4 file, got {out}")
        _writable_dir(out.parent)
        if out.is_dir():
            raise ValueError(f"{out} is a directory")
    except (ValueError, OSError) as exc:
        return _fail(exc)
    start = time.perf_counter()
    try:
        with _progress("frames", frame_count(args.seconds, args.fps)) as advance:
            coco = write_video(out, seed=args.seed, width=width, height=height, fps=args.fps,
                               seconds=args.seconds, objects=args.objects, crf=args.crf, progress=advance)
    except (OSError, av.FFmpegError) as exc:
        return _fail(f"cannot write {out}: {exc}")
    print(f"wrote {out} ({out.with_suffix('.json').name}): {len(coco['images'])} frames, "
          f"{len(coco['annotations'])} annotations in {time.perf_counter() - start:.1f} s")
    return 0


def run_dataset(args: argparse.Namespace) -> int:
    from synth.dataset import check_dataset_args, write_dataset

    out: Path = args.out_dir
    width, height = args.size
    try:
        check_dataset_args(args.count, width, height, args.max_objects)
        _writable_dir(out / "images")
    except (ValueError, OSError) as exc:
        return _fail(exc)
    start = time.perf_counter()
    try:
        with _progress("images", args.count) as advance:
            coco = write_dataset(out, seed=args.seed, count=args.count, width=width, height=height,
                                 max_objects=args.max_objects, progress=advance)
    except OSError as exc:
        return _fail(f"cannot write {out}: {exc}")
    empty = len(coco["images"]) - len({a["image_id"] for a in coco["annotations"]})
    print(f"wrote {out}: {len(coco['images'])} images ({empty} without objects), "
          f"{len(coco['annotations'])} annotations in {time.perf_counter() - start:.1f} s")
    return 0


def _fail(error: object) -> int:
    print(f"detstream synth: error: {error}", file=sys.stderr)
    return 2


def _writable_dir(directory: Path) -> None:
    """Create `directory` if needed; raise OSError (with a plain message) if we cannot write there."""
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OSError(f"cannot create directory {directory}: {exc.strerror or exc}") from exc
    probe = directory / f".synth-write-test-{time.monotonic_ns()}"
    try:
        probe.touch()
        probe.unlink()
    except OSError as exc:
        raise OSError(f"cannot write to directory {directory}: {exc.strerror or exc}") from exc


@contextmanager
def _progress(unit: str, total: int) -> Iterator[Callable[[int, int], None]]:
    """A rich progress bar on stderr (so stdout keeps only the summary line)."""
    columns = (TextColumn(f"writing {unit}"), BarColumn(), MofNCompleteColumn(),
               TimeElapsedColumn(), TimeRemainingColumn())
    with Progress(*columns, console=Console(stderr=True), transient=True) as progress:
        task = progress.add_task(unit, total=total)
        yield lambda done, _total: progress.update(task, completed=done)


def _size(text: str) -> tuple[int, int]:
    match = re.fullmatch(r"\s*(\d+)\s*[xX]\s*(\d+)\s*", text)
    if not match:
        raise argparse.ArgumentTypeError(f"expected WIDTHxHEIGHT such as 1280x720, got {text!r}")
    width, height = int(match.group(1)), int(match.group(2))
    if not (32 <= width <= 8192 and 32 <= height <= 8192):
        raise argparse.ArgumentTypeError(f"width and height must be in 32..8192, got {text!r}")
    return width, height


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}") from None
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}")
    return value


def _count(low: int, high: int) -> Callable[[str], int]:
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer in {low}..{high}, got {text!r}") from None
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"expected an integer in {low}..{high}, got {text!r}")
        return value

    parse.__name__ = "integer"  # argparse names the type in some messages
    return parse
