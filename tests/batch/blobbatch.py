"""Batch test helpers: the 20-file collection, the blob engine as a batch job, and a
script entry point (`python blobbatch.py OUT INPUT...`) that runs a job in its own
process so tests can interrupt it for real."""

from __future__ import annotations

import json
import os
import signal
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/, for support

from support import BlobEngine, write_video  # noqa: E402

from pipeline.batch.config import load_batch_settings  # noqa: E402
from pipeline.batch.job import BatchJob  # noqa: E402

GOOD = 18
BAD = ("broken/garbage.mp4", "broken/truncated.mp4")
TIMING = ("capture_ts", "latency_ms")  # wall-clock fields: differ between any two runs


def make_collection(root: Path) -> Path:
    """18 short blob videos (8-25 frames) in three folders, plus a garbage file and a
    truncated MP4 among them."""
    for i in range(GOOD):
        folder = root / ("", "day1", "day2/cam")[i % 3]
        folder.mkdir(parents=True, exist_ok=True)
        write_video(folder / f"clip{i:02d}.mp4", 8 + i, 160, 96)
    (root / "broken").mkdir()
    (root / BAD[0]).write_bytes(b"not a video at all " * 50)
    whole = write_video(root / "broken" / "whole.mp4", 30, 160, 96)
    (root / BAD[1]).write_bytes(whole.read_bytes()[:-2000])
    whole.unlink()
    (root / "notes.txt").write_text("not a video, not picked from a directory\n")
    return root


def job(inputs: list[str], out: Path, force: bool = False, engine=BlobEngine, **settings) -> BatchJob:
    return BatchJob(inputs, out, load_batch_settings(None, settings), engine, "blob-test", force)


def results(out: Path, rel: str) -> list[dict]:
    """A file's messages without the wall-clock fields."""
    lines = (out / f"{rel}.jsonl").read_text().splitlines()
    return [{k: v for k, v in json.loads(line).items() if k not in TIMING} for line in lines]


class SlowBlobEngine(BlobEngine):
    def __init__(self) -> None:
        super().__init__(delay_s=0.02)


class DyingBlobEngine(BlobEngine):
    """Kills its own process (SIGKILL: no clean-up) on its 10th call, once per `marker`."""

    def __init__(self, marker: str) -> None:
        super().__init__()
        self.marker = Path(marker)

    def infer(self, images, image_sizes):  # type: ignore[no-untyped-def]
        if self.calls == 9:
            try:
                fd = os.open(self.marker, os.O_CREAT | os.O_EXCL)  # only the first worker to get here
                os.close(fd)
                os.kill(os.getpid(), signal.SIGKILL)
            except FileExistsError:
                pass
        return super().infer(images, image_sizes)


if __name__ == "__main__":
    out, *inputs = sys.argv[1:]
    report = job(inputs, Path(out), engine=SlowBlobEngine, decoders=2).run()
    sys.exit(report.exit_code)
