"""Redis sink publish throughput (messages/s), in one run on one self-started redis-server:

- the sink's publisher with pipelined batches (the default, 64 XADDs per round trip);
- the same publisher with one round trip per message (batch=1);
- `redis-benchmark` XADD of a payload of the same size, one client, unpipelined (-P 1)
  and pipelined (-P 64): what the server and the network path allow, no Python involved.

Rounds alternate between the methods so a noisy neighbour slows all alike; medians and
ratios are printed. Messages are real schema-v1 messages with 5 detections (~700 bytes).

    .venv/bin/python -m bench.redis_publish [--messages 20000] [--rounds 3]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import redis

from bench.common import cpu_name
from pipeline.core.messages import SCHEMA, event_id
from stages.sinks.outbox import Outbox
from pipeline.core.redis_url import parse_redis_url
from stages.sinks.spool import Spool
from stages.sinks.publisher import Publisher
from stages.sinks.redis_streams import SINK_OPTIONS, RedisSinkSettings, RedisTransport

PIPELINE_BATCH = 64


def message(seq: int) -> str:
    detections = [
        {"box": [10.0 + i, 20.0, 110.5 + i, 220.25], "score": 0.9123, "class_id": 1 + i % 4, "label": "person"}
        for i in range(5)
    ]
    body = {
        "schema": SCHEMA, "event_id": event_id("cam1", seq), "source": "cam1", "seq": seq,
        "pts": seq / 25, "capture_ts": 1795460774.694871 + seq / 25, "width": 1280, "height": 720,
        "model": "faster-compact-synth", "detections": detections,
        "latency_ms": {"decode": 14.1, "preprocess": 6.2, "detect": 101.9, "postprocess": 1.8, "total": 124.0},
    }
    return json.dumps(body, separators=(",", ":"))


def start_server(directory: Path) -> tuple[subprocess.Popen[bytes], int]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    process = subprocess.Popen(
        ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
         "--dir", str(directory)],
        stdout=subprocess.DEVNULL,
    )
    client = redis.Redis(port=port)
    for _ in range(200):
        try:
            client.ping()
            return process, port
        except redis.ConnectionError:
            time.sleep(0.05)
    process.kill()
    raise SystemExit("redis-server did not start")


def sink_rate(port: int, lines: list[str], batch: int, spool_dir: Path) -> float:
    """Messages/s through the sink's Outbox + Publisher: first offer to last XADD acknowledged."""
    target = parse_redis_url(f"redis://127.0.0.1:{port}/0?stream=bench:sink&batch={batch}&spool={spool_dir}", SINK_OPTIONS)
    client = target.client()
    client.delete("bench:sink")
    settings = RedisSinkSettings.from_target(target)
    delivery = settings.delivery
    outbox = Outbox(Spool(delivery.spool, delivery.spool_bytes), capacity=len(lines))  # all in memory: no disk
    publisher = Publisher(RedisTransport(client, settings, target.display), outbox, delivery.batch, target.display)
    publisher.start()
    started = time.perf_counter()
    for line in lines:
        outbox.offer(line)
    while not outbox.wait_empty(0.01):
        pass
    elapsed = time.perf_counter() - started
    publisher.stop()
    outbox.close()
    publisher.join()
    assert publisher.published == len(lines) and client.xlen("bench:sink") == len(lines)
    return len(lines) / elapsed


def redis_benchmark_rate(port: int, count: int, payload: str, pipeline: int) -> float:
    """requests/s of `redis-benchmark` XADD with one client."""
    result = subprocess.run(
        ["redis-benchmark", "-p", str(port), "-c", "1", "-n", str(count), "-P", str(pipeline), "--csv",
         "XADD", "bench:rb", "MAXLEN", "~", "100000", "*", "message", payload],
        capture_output=True, text=True, check=True,
    )
    row = [line for line in result.stdout.splitlines() if line.startswith('"XADD')][-1]
    # columns: "test","rps","avg_latency_ms",min,p50,p95,p99,max; the test name holds the
    # (unescaped) JSON payload, so count from the end
    return float(row.rsplit('","', 7)[1].strip('"'))


def measure(messages: int, rounds: int) -> dict:
    """Median messages/s of each method, alternating over rounds on one redis-server."""
    if shutil.which("redis-server") is None or shutil.which("redis-benchmark") is None:
        raise SystemExit("needs redis-server and redis-benchmark on PATH")
    lines = [message(i) for i in range(messages)]
    payload = lines[0]
    methods = {
        f"sink, pipelined (batch {PIPELINE_BATCH})": lambda port, tmp: sink_rate(port, lines, PIPELINE_BATCH, tmp),
        "sink, one round trip per message": lambda port, tmp: sink_rate(port, lines, 1, tmp),
        f"redis-benchmark XADD -c 1 -P {PIPELINE_BATCH}": lambda port, tmp: redis_benchmark_rate(port, messages, payload, PIPELINE_BATCH),
        "redis-benchmark XADD -c 1 -P 1": lambda port, tmp: redis_benchmark_rate(port, messages, payload, 1),
    }
    rates: dict[str, list[float]] = {name: [] for name in methods}
    with tempfile.TemporaryDirectory() as tmp:
        process, port = start_server(Path(tmp))
        try:
            for round_ in range(rounds):
                for i, (name, rate) in enumerate(methods.items()):
                    rates[name].append(rate(port, Path(tmp) / f"spool-{round_}-{i}"))
                redis.Redis(port=port).flushall()
        finally:
            process.terminate()
            process.wait()
    median = {name: statistics.median(values) for name, values in rates.items()}
    names = list(methods)
    return {
        "messages": messages, "message_bytes": len(payload), "rounds": rounds, "redis_server": redis_version(),
        "msgs_per_s_median": {name: round(value) for name, value in median.items()},
        "msgs_per_s_runs": {name: [round(v) for v in values] for name, values in rates.items()},
        "pipelined_over_unpipelined": round(median[names[0]] / median[names[1]], 2),
        "sink_pipelined_over_redis_benchmark": round(median[names[0]] / median[names[2]], 2),
        "sink_unpipelined_over_redis_benchmark": round(median[names[1]] / median[names[3]], 2),
    }


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.redis_publish", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--messages", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    result = measure(args.messages, args.rounds)
    median = result["msgs_per_s_median"]
    print(f"{cpu_name()}, {os.cpu_count()} cores; {args.messages} messages of {result['message_bytes']} bytes, "
          f"median of {args.rounds} rounds, redis-server {result['redis_server']}")
    for name, value in median.items():
        print(f"  {name:40s} {value:10.0f} msg/s")
    print(f"  pipelined / one per round trip:            {result['pipelined_over_unpipelined']:.1f}x")
    print(f"  sink pipelined / redis-benchmark -P {PIPELINE_BATCH}:      {result['sink_pipelined_over_redis_benchmark']:.2f}x")
    print(f"  sink unpipelined / redis-benchmark -P 1:   {result['sink_unpipelined_over_redis_benchmark']:.2f}x")
    return 0


def redis_version() -> str:
    out = subprocess.run(["redis-server", "--version"], capture_output=True, text=True).stdout
    return next((part.split("=")[1] for part in out.split() if part.startswith("v=")), "?")


if __name__ == "__main__":
    sys.exit(main())
