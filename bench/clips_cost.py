"""What event clips cost per camera (issue #18): the buffer of encoded packets each source
keeps (stages/clips/ring.py) and writing a clip out of it (stages/clips/writer.py), at
720p/25 fps with a 10 s buffer, in CPU % of one core and in memory.

- The stream: the demo video re-encoded as a camera sends it (1280x720, 25 fps, H.264
  at `mbps` Mbit/s, a key frame every 2 s, no B-frames), once, into data/; or `--video`
  (a recording of a real camera, say).
- Buffer: the stream's packets, demuxed beforehand, are put into a
  PacketRing(10 s, 64 MB) as the reader does, looped with shifted timestamps for
  `seconds` of video; CPU % = the CPU time of those `put` calls / the seconds of video
  they hold (the loop's own cost, timed without the ring, is taken out). Memory: what
  Python allocates for the full buffer (tracemalloc: the packets' bytes and their
  records), and its payload alone. For scale, the decode stage's CPU on the same video
  (demux, decode, RGB: what the reader thread does anyway), and the ratio of the two.
- Clip writing: `clips` clips of pre 5 s + post 5 s from that buffer, each written by
  the real writer thread (stream copy into a temporary MP4, fsync, rename, retention);
  the process's CPU time and the wall time per clip, and CPU % at one clip a minute per
  camera. Snapshots: one track's annotated frame and crop (720p JPEGs) per clip.
Medians over `rounds`.

    .venv/bin/python -m bench.clips_cost [--mbps 4 | --video CAMERA.mp4] [--seconds 120] [--clips 5] [--json out.json]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path
from typing import Any

from bench.common import CAMERA_MBPS, DEMO_VIDEO, camera_video, ensure_video, machine, print_result

BUFFER_S, BUFFER_BYTES = 10.0, 64 * 10**6
PRE_S, POST_S = 5.0, 5.0


class _DiscardMux:
    """Stands in for the decode stage's queue: drops every frame."""

    def put(self, source: str, item: Any) -> None:
        return None

    def close(self, source: str, marker: Any = None) -> None:
        pass


def demuxed(video: Path) -> tuple[list[Any], Any, float]:
    """The video's packets (in memory), its stream (for the buffer's template), its duration (s)."""
    import av

    container = av.open(str(video))
    stream = container.streams.video[0]
    packets = [p for p in container.demux(stream) if p.size]
    duration = float(len(packets) / stream.average_rate)
    return packets, stream, duration


def fill(ring: Any, stream: Any, packets: list[Any], duration: float, seconds: float) -> tuple[float, float]:
    """Put `seconds` of video into `ring` (None: the loop alone), looping `packets`; the CPU
    seconds it took and the seconds of video put."""
    ticks = round(duration / stream.time_base)
    loops = max(1, round(seconds / duration))
    base = [(p.pts, p.dts) for p in packets]
    started = time.thread_time()
    for loop in range(loops):
        for packet, (pts, dts) in zip(packets, base):
            packet.pts, packet.dts = pts + loop * ticks, dts + loop * ticks
            if ring is not None:
                ring.put(packet)
    return time.thread_time() - started, loops * duration


def measure_ring(stream: Any, packets: list[Any], duration: float, seconds: float, rounds: int) -> dict:
    from stages.clips.ring import PacketRing

    put_s, loop_s, video_s = [], [], 0.0
    for _ in range(rounds):  # the loop alone and with the buffer, alternating
        loop_s.append(fill(None, stream, packets, duration, seconds)[0])
        ring = PacketRing("bench", BUFFER_S, BUFFER_BYTES)
        ring.opened(stream, 0)
        cpu, video_s = fill(ring, stream, packets, duration, seconds)
        put_s.append(cpu)
    cost = max(statistics.median(put_s) - statistics.median(loop_s), 0.0)
    tracemalloc.start()
    ring = PacketRing("bench", BUFFER_S, BUFFER_BYTES)
    ring.opened(stream, 0)
    fill(ring, stream, packets, duration, BUFFER_S * 2)
    held, _ = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    segment = ring.segments[-1]
    return {
        "video_seconds": round(video_s, 1),
        "cpu_percent": round(100 * cost / video_s, 4),
        "us_per_packet": round(1e6 * cost / (video_s * float(stream.average_rate)), 2),
        "held_s": round(segment.packets[-1].pts_s - segment.packets[0].pts_s, 2),
        "payload_mb": round(ring.bytes / 1e6, 2),
        "memory_mb": round(held / 1e6, 2),
        "overflows": ring.overflows,
    }


def measure_decode(video: Path, rounds: int) -> float:
    """CPU % of one core of the decode stage on `video` (all its threads: FFmpeg's too)."""
    from pipeline.core.config import SourceConfig
    from pipeline.core.context import RunContext
    from stages.decode import Decoder

    cpu = []
    for _ in range(rounds):
        stage = Decoder(SourceConfig(uri=str(video)), "bench", _DiscardMux(), RunContext())  # type: ignore[arg-type]
        started = time.process_time()
        stage.run()
        cpu.append((time.process_time() - started) / (stage.frames / 25.0))
    return round(100 * statistics.median(cpu), 2)


def measure_clips(stream: Any, packets: list[Any], duration: float, clips: int, workdir: Path) -> dict:
    from pipeline.core.clips_config import ClipsConfig, RetentionConfig
    from pipeline.core.events import Event
    from stages.clips.retention import Retention
    from stages.clips.ring import PacketRing
    from stages.clips.writer import Capture, ClipWriter

    settings = ClipsConfig(enabled=True, pre_s=PRE_S, post_s=POST_S, buffer_s=BUFFER_S * 2)
    writer = ClipWriter(workdir, Retention(workdir, RetentionConfig()))
    writer.start()
    ring = PacketRing("bench", (PRE_S + POST_S) * 2, BUFFER_BYTES * 2)
    ring.opened(stream, 0)
    fill(ring, stream, packets, duration, (PRE_S + POST_S) * 2)
    segment = ring.segments[-1]
    t = segment.packets[-1].pts_s - POST_S - 1.0  # the whole window is buffered
    cpu, wall, sizes = [], [], []
    for index in range(clips):
        opener = Event.of({"event_id": f"{index:08x}", "session": 0, "seq": index})
        capture = Capture("bench", ring, segment, settings, t - PRE_S, t + POST_S,
                          workdir / "bench" / f"20250101T000000.000Z-{index:08x}.mp4", opener, [opener.body["event_id"]])
        capture.closing = True
        started, started_cpu = time.perf_counter(), time.process_time()
        writer.add(capture)
        writer.wait_closed([capture], 60)
        cpu.append(time.process_time() - started_cpu)
        wall.append(time.perf_counter() - started)
        sizes.append(capture.path.stat().st_size)
    writer.stop(10)
    cpu_ms = statistics.median(cpu) * 1000
    return {"clips": clips, "clip_s": PRE_S + POST_S, "cpu_ms": round(cpu_ms, 1),
            "wall_ms": round(statistics.median(wall) * 1000, 1), "mb": round(statistics.median(sizes) / 1e6, 2),
            "cpu_percent_at_one_a_minute": round(100 * cpu_ms / 60000, 4), "failed": writer.failed}


def measure_snapshots(video: Path, rounds: int, workdir: Path) -> float:
    """Median ms of CPU to write one track's annotated frame and crop (720p)."""
    import av
    import numpy as np

    from pipeline.core.clips_config import SnapshotConfig
    from pipeline.core.messages import Message
    from pipeline.core.types import Detections, Frame
    from stages.clips.snapshots import Best, SnapshotJob, snapshot_paths, write_snapshots

    with av.open(str(video)) as container:
        image = next(container.decode(video=0)).to_ndarray(format="rgb24")
    box = np.array([[600, 300, 680, 500]], np.float32)
    detections = Detections(Frame("bench", 0, 0.0, 0.0, image), box, np.array([0.9], np.float32),
                            np.array([1]), ["person"])
    message = Message.of(detections, "bench", np.array([1]))
    job = SnapshotJob(1, Best(0.9, message, (600.0, 300.0, 680.0, 500.0)),
                      snapshot_paths(workdir, "20250101T000000.000Z-00000000", 1, SnapshotConfig()))
    cpu = []
    for _ in range(rounds):
        started = time.process_time()
        write_snapshots(job, SnapshotConfig())
        cpu.append(time.process_time() - started)
    return round(statistics.median(cpu) * 1000, 1)


def stream_for(demo: Path, mbps: float) -> Path:
    """The camera-like stream made from the demo video (generated first if need be)."""
    ensure_video(demo)
    return camera_video(demo, mbps)


def measure(video: Path, seconds: float, clips: int, rounds: int) -> dict:
    packets, stream, duration = demuxed(video)
    size = [stream.codec_context.width, stream.codec_context.height]
    bitrate = sum(p.size for p in packets) * 8 / duration / 1e6
    ring = measure_ring(stream, packets, duration, seconds, rounds)
    decode = measure_decode(video, rounds)
    with tempfile.TemporaryDirectory() as tmp:
        clip = measure_clips(stream, packets, duration, clips, Path(tmp))
        snapshot_ms = measure_snapshots(video, max(rounds, 3), Path(tmp))
    gop = [i for i, p in enumerate(packets) if p.is_keyframe]
    result = {
        "video": str(video), "size": size, "fps": float(stream.average_rate), "bitrate_mbps": round(bitrate, 2),
        "gop_frames": gop[1] - gop[0] if len(gop) > 1 else len(packets), "buffer_s": BUFFER_S,
        "buffer_bytes": BUFFER_BYTES, "rounds": rounds, "ring": ring, "decode_cpu_percent": decode,
        "ring_over_decode": round(ring["cpu_percent"] / decode, 5) if decode else None,
        "clip": clip, "snapshot_cpu_ms": snapshot_ms,
    }
    print(f"buffer: {ring['cpu_percent']:.3f} % of a core per camera ({ring['us_per_packet']} us a packet), "
          f"{ring['memory_mb']} MB for {ring['held_s']} s ({ring['payload_mb']} MB of packets); decode stage "
          f"{decode} %; clip of {PRE_S + POST_S:g} s: {clip['cpu_ms']} ms CPU, {clip['wall_ms']} ms wall, "
          f"{clip['mb']} MB; snapshots {snapshot_ms} ms", file=sys.stderr, flush=True)
    return result


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.clips_cost", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mbps", type=float, default=CAMERA_MBPS, help="bit rate of the camera-like stream made "
                        "from the demo video")
    parser.add_argument("--video", type=Path, help="measure this H.264 MP4 instead (720p/25 fps)")
    parser.add_argument("--seconds", type=float, default=120.0, help="seconds of video put into the buffer per round")
    parser.add_argument("--clips", type=int, default=5, help="clips written")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    video = args.video or stream_for(DEMO_VIDEO, args.mbps)
    print_result({"machine": machine(), **measure(video, args.seconds, args.clips, args.rounds)}, args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
