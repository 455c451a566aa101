"""A detector slower than the camera, for a minute: is latency bounded, memory flat, and
every frame accounted for?

Serves a 25 fps clip from the real RTSP test server (tests/rtsp/server.py, needs the
Debian GStreamer packages `make test` installs) and runs the pipeline with a fake
detector that takes 250 ms per call (4 frames/s). Prints the frame accounting
(received = processed + dropped by cause), the age of frames at the detector against
the bound, end-to-end latency, and the process RSS over time.

    .venv/bin/python bench/live_latency.py [--seconds 60] [--delay 0.25] [--max-age-ms 1000]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))  # the test server and the fake detector

from pipeline.core.config import load_config  # noqa: E402
from rtsp_support import BackgroundRun, RtspServer, write_live_clip  # noqa: E402
from support import BlobEngine  # noqa: E402


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024.0
    return float("nan")


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--delay", type=float, default=0.25, help="detector seconds per call (0.25 = 4 fps)")
    parser.add_argument("--max-age-ms", type=float, default=1000.0)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        clip = write_live_clip(Path(tmp) / "clip.mp4", seconds=args.seconds + 15, fps=25, width=640, height=360)
        server = RtspServer(clip).start()
        out = Path(tmp) / "out.jsonl"
        try:
            config = load_config(None, {
                "sources": [{"uri": server.url(), "name": "cam", "max_age_ms": args.max_age_ms}],
                "sinks": [f"jsonl:{out}"],
            })
            run = BackgroundRun(config, BlobEngine(delay_s=args.delay))
            run.wait_for(lambda: run.health("cam")["received"] > 0, 30, "the first frame")
            started = time.monotonic()
            samples: list[tuple[float, float]] = []
            while (elapsed := time.monotonic() - started) < args.seconds:
                samples.append((elapsed, rss_mb()))
                time.sleep(1.0)
            summary = run.stop()
        finally:
            server.stop()
        messages = [json.loads(line) for line in out.read_text().splitlines()]

    health = summary.health["cam"]
    dropped = sum(health["dropped"].values())
    totals = [m["latency_ms"]["total"] for m in messages]
    print(f"camera 25 fps, detector {1 / args.delay:.1f} fps, {args.seconds:.0f} s, max_age_ms {args.max_age_ms:g}")
    print(f"frames received {health['received']} = processed {health['processed']} + dropped {dropped} "
          f"{dict(health['dropped'])}: {'exact' if health['received'] == health['processed'] + dropped else 'MISMATCH'}")
    print(f"messages written {len(messages)} (processed {health['processed']})")
    print(f"age at the detector: max {health['max_age_ms']:.0f} ms (bound {args.max_age_ms:g} ms)")
    print(f"latency decode -> postprocess: p50 {statistics.median(totals):.0f} ms, "
          f"p99 {percentile(totals, 0.99):.0f} ms, max {max(totals):.0f} ms")
    warm = [rss for t, rss in samples if t >= 10]
    print("RSS MB at " + ", ".join(f"{t:.0f}s {rss:.0f}" for t, rss in samples[:: max(1, len(samples) // 6)]))
    print(f"RSS after warm-up (10 s on): min {min(warm):.1f} MB, max {max(warm):.1f} MB, "
          f"last - first {warm[-1] - warm[0]:+.1f} MB")
    return 0 if health["received"] == health["processed"] + dropped else 1


if __name__ == "__main__":
    sys.exit(main())
