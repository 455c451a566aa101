"""Soak: one real `detstream run` for N minutes under combined faults, sampled every few
seconds, ending in curves (PNG) and a verdict (JSON + markdown); exit 0 iff it passes.

What runs (docs/soak.md): four RTSP test-server cameras (tests/rtsp/server.py) - `steady`
(healthy), `flaky` (SIGKILLed and restarted), `sleepy` (SIGSTOPped and continued),
`locked` (basic auth; detstream has the wrong password) - and a looping file, all at
`max_fps` 2 into the default embedded model; sinks: a JSONL file (the record of what was
produced) and Redis (a redis-server with appendfsync always, SIGKILLed and restarted;
spool in the output folder); a `detstream consume` group reading all the while into a
file; the control API, through which a `visitor` camera is added and removed. The rules
of the verdict are in bench/soak_verdict.py.

    python -m bench.soak --minutes 30 [--out DIR] [--seed S] [--fault-every S]
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import random
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import yaml

from bench.common import REPO, cpu_seconds, machine, now
from bench.soak_faults import ApiAddRemove, CameraKill, CameraStall, RedisRestart, Schedule
from bench.soak_plot import plot
from bench.soak_verdict import Fault, Verdict, judge, markdown

sys.path[:0] = [str(REPO / "tests"), str(REPO / "tests" / "redis")]  # the RTSP and Redis test servers
from redis_support import RedisServer  # noqa: E402
from rtsp_support import RtspServer, free_port, write_live_clip  # noqa: E402

CAMERA_FPS = 10  # the test clips' rate; detstream keeps MAX_FPS of it
MAX_FPS = 2
POLL_S = 1.0  # source states, fault recoveries
START_TIMEOUT_S = 180.0  # model load and first frames of every healthy source
DRAIN_TIMEOUT_S = 60.0
# short timeouts and backoff: a fault's recovery is bounded by these, not by the defaults' 30 s
CAMERA = {"max_fps": MAX_FPS, "open_timeout_s": 4.0, "read_timeout_s": 3.0,
          "reconnect": {"initial_s": 0.5, "max_s": 4.0}}
HEALTHY = ["steady", "loop"]
WRONG_PASSWORD = "locked"


class Api:
    """The run's control API (docs/api.md), standard library only."""

    def __init__(self, port: int) -> None:
        self.base = f"http://127.0.0.1:{port}"
        self.camera_settings = CAMERA

    def get(self, path: str, timeout: float = 5.0) -> bytes:
        with urllib.request.urlopen(self.base + path, timeout=timeout) as answer:
            return answer.read()

    def _send(self, method: str, path: str, body: dict[str, Any] | None = None) -> int:
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(self.base + path, data=data, method=method,
                                         headers={"Content-Type": "application/json"} if data else {})
        try:
            with urllib.request.urlopen(request, timeout=30) as answer:
                return answer.status
        except urllib.error.HTTPError as exc:
            return exc.code

    def add(self, source: dict[str, Any]) -> int:
        return self._send("POST", "/sources", source)

    def remove(self, name: str) -> int:
        return self._send("DELETE", f"/sources/{name}")

    def sources(self) -> dict[str, dict[str, Any]]:
        return {s["name"]: s for s in json.loads(self.get("/sources"))}

    def queued(self) -> int:
        """Frames in every queue, from the Prometheus text of /metrics."""
        text = self.get("/metrics").decode()
        return int(sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
                       if line.startswith("detstream_queue_depth{")))


class LineCounter:
    """Lines of a growing file, counted incrementally (the file may be large)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.offset = 0
        self.lines = 0

    def count(self) -> int:
        if self.path.exists():
            with self.path.open("rb") as file:
                file.seek(self.offset)
                chunk = file.read()
            self.offset += len(chunk)
            self.lines += chunk.count(b"\n")
        return self.lines


def event_ids(path: Path) -> list[str]:
    if not path.exists():
        return []
    return [json.loads(line)["event_id"] for line in path.read_text().splitlines() if line.strip()]


def process_numbers(pid: int) -> dict[str, float]:
    """RSS (MB), open fds and threads of a process, from /proc."""
    rss = 0.0
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            rss = int(line.split()[1]) / 1024.0
    return {"rss_mb": round(rss, 1), "fds": len(os.listdir(f"/proc/{pid}/fd")),
            "threads": len(os.listdir(f"/proc/{pid}/task"))}


def spool_bytes(directory: Path) -> int:
    return sum(p.stat().st_size for p in directory.glob("*.spool")) if directory.exists() else 0


class Soak:
    """Servers, detstream, the consumer, the fault schedules and the records of one soak."""

    def __init__(self, out: Path, minutes: float, seed: int, fault_every_s: float, sample_s: float) -> None:
        self.out = out
        self.duration_s = minutes * 60.0
        self.rng = random.Random(seed)
        self.fault_every_s = fault_every_s
        self.sample_s = sample_s
        self.samples: list[dict[str, float]] = []
        self.states: list[tuple[float, str, str]] = []
        self.faults: list[Fault] = []
        self.views: dict[str, dict[str, Any]] = {}
        self.cameras: dict[str, RtspServer] = {}
        self.processes: list[subprocess.Popen[bytes]] = []
        self.produced = LineCounter(out / "produced.jsonl")
        self.consumed_lines = LineCounter(out / "consumed.jsonl")
        self.t0 = time.monotonic()

    # -- the Harness the fault schedules see
    def state(self, source: str) -> str | None:
        view = self.views.get(source)
        return view["state"] if view else None

    def consumed(self) -> int:
        return self.consumed_lines.count()

    def mark(self, fault: Fault) -> None:
        self.faults.append(fault)
        print(f"[{fault.start:6.0f} s] fault: {fault.kind} {fault.target}", flush=True)

    # -- set-up
    def start_servers(self) -> None:
        # every client starts at the clip's beginning; it must outlast the start-up and the run
        clip = write_live_clip(self.out / "camera.mp4", self.duration_s + 90, CAMERA_FPS)
        for name in ("steady", "flaky", "sleepy"):
            self.cameras[name] = RtspServer(clip).start()
        self.cameras[WRONG_PASSWORD] = RtspServer(clip, user="viewer", password="right-password").start()
        write_live_clip(self.out / "loop.mp4", 8, CAMERA_FPS)
        self.redis = RedisServer(self.out / "redis", persistent=True).start()

    def config(self, api_port: int) -> Path:
        spool = self.out / "spool"
        sources = [{"uri": self.cameras[n].url(), "name": n, **CAMERA} for n in ("steady", "flaky", "sleepy")]
        sources.append({"uri": self.cameras[WRONG_PASSWORD].url(credentials="viewer:wrong-password@"),
                        "name": WRONG_PASSWORD, **CAMERA})
        sources.append({"uri": str(self.out / "loop.mp4"), "name": "loop", "loop": True, "max_fps": MAX_FPS})
        config = {
            "sources": sources,
            # a small buffer: a Redis outage of a few seconds already goes through the spool
            "sinks": [f"jsonl:{self.out / 'produced.jsonl'}", f"{self.redis.url}?spool={spool}&buffer=20"],
            "api": {"port": api_port}, "batch": {"max_batch": 4}, "metrics": {"log_every_s": 60},
        }
        path = self.out / "config.yaml"
        path.write_text(yaml.safe_dump(config, sort_keys=False))
        return path

    def spawn(self, args: list[str], log: str) -> subprocess.Popen[bytes]:
        env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]),
               "PYTHONUNBUFFERED": "1"}
        with (self.out / log).open("wb") as file:
            process = subprocess.Popen([sys.executable, "-m", "pipeline.cli", *args], stdout=file,
                                       stderr=subprocess.STDOUT, env=env, cwd=REPO)
        self.processes.append(process)
        return process

    def start_detstream(self) -> None:
        port = free_port()
        self.api = Api(port)
        self.consumer = self.spawn(["consume", "--redis", self.redis.url, "--group", "soak", "--consumer", "soak-1",
                                    "--out", str(self.out / "consumed.jsonl"), "--block-ms", "500"], "consumer.log")
        self.detstream = self.spawn(["run", str(self.config(port))], "detstream.log")
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            if self.detstream.poll() is not None:
                raise RuntimeError(f"detstream exited with {self.detstream.returncode}: see {self.out / 'detstream.log'}")
            try:
                self.views = self.api.sources()
                if all(self.state(n) == "streaming" for n in (*HEALTHY, "flaky", "sleepy")):
                    return
            except (OSError, ValueError):
                pass  # not serving yet
            if time.monotonic() > deadline:
                raise RuntimeError(f"not every healthy source streamed within {START_TIMEOUT_S:.0f} s: {self.views}")
            time.sleep(0.5)

    # -- the run
    def now(self) -> float:
        return time.monotonic() - self.t0

    def poll(self) -> None:
        try:
            self.views = self.api.sources()
        except (OSError, ValueError) as exc:
            print(f"[{self.now():6.0f} s] GET /sources failed: {exc}", flush=True)
            return
        t = round(self.now(), 1)
        self.states += [(t, name, view["state"]) for name, view in self.views.items()]

    def sample(self) -> None:
        row: dict[str, float] = {"t": round(self.now(), 1), **process_numbers(self.detstream.pid)}
        try:
            row["queue_depth"] = self.api.queued()
        except (OSError, ValueError):
            row["queue_depth"] = float("nan")
        row["spool_bytes"] = spool_bytes(self.out / "spool")
        row["produced"] = self.produced.count()
        row["consumed"] = self.consumed()
        for name in (*HEALTHY, "flaky", "sleepy", WRONG_PASSWORD):
            row[f"state_{name}"] = self.state(name) or "-"  # type: ignore[assignment]
        self.samples.append(row)
        first = len(self.samples) == 1  # a folder used before starts a new file
        with (self.out / "samples.csv").open("w" if first else "a", newline="") as file:
            writer = csv.DictWriter(file, fieldnames=list(row))
            if first:
                writer.writeheader()
            writer.writerow(row)

    def soak(self) -> None:
        quiet_from = self.duration_s - max(30.0, 0.1 * self.duration_s)  # time to recover before the end
        visitor = self.cameras["steady"].url()
        schedules = [
            Schedule(CameraKill(self.cameras["flaky"], "flaky"), self.rng, self.fault_every_s, (2, 6), quiet_from),
            Schedule(CameraStall(self.cameras["sleepy"], "sleepy"), self.rng, self.fault_every_s, (7, 12), quiet_from),
            Schedule(RedisRestart(self.redis), self.rng, 1.5 * self.fault_every_s, (2, 5), quiet_from),
            Schedule(ApiAddRemove(self.api, visitor), self.rng, self.fault_every_s, (12, 20), quiet_from),
        ]
        self.t0 = time.monotonic()
        next_sample = 0.0
        while (now := self.now()) < self.duration_s:
            self.poll()
            for schedule in schedules:
                schedule.tick(self.now(), self)
            if now >= next_sample:
                self.sample()
                next_sample += self.sample_s
            time.sleep(max(0.0, POLL_S - (self.now() - now)))
        for schedule in schedules:
            schedule.close(self.now())
        self.poll()
        self.sample()

    def finish(self) -> int | None:
        """SIGINT to detstream, wait for its drain; then let the consumer catch up and stop it."""
        self.detstream.send_signal(signal.SIGINT)
        try:
            code: int | None = self.detstream.wait(DRAIN_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            code = None
            self.detstream.kill()
            self.detstream.wait()
        produced = self.produced.count()
        last, still = self.consumed(), time.monotonic()
        while self.consumed() < produced and time.monotonic() - still < 15.0:
            if self.consumed() != last:
                last, still = self.consumed(), time.monotonic()
            time.sleep(0.2)
        self.consumer.send_signal(signal.SIGINT)
        self.consumer.wait(30)
        return code

    def stop_all(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                process.kill()
                process.wait()
        for server in self.cameras.values():
            server.stop()
        if getattr(self, "redis", None) is not None:
            self.redis.stop()

    def verdict(self, exit_code: int | None) -> Verdict:
        produced = event_ids(self.out / "produced.jsonl")
        locked_messages = sum(1 for line in (self.out / "produced.jsonl").read_text().splitlines()
                              if f'"source": "{WRONG_PASSWORD}"' in line or f'"source":"{WRONG_PASSWORD}"' in line)
        return judge(self.duration_s, self.samples, self.faults, self.states, HEALTHY,
                     (WRONG_PASSWORD, self.views.get(WRONG_PASSWORD), locked_messages), produced,
                     event_ids(self.out / "consumed.jsonl"), consumer_duplicates(self.out / "consumer.log"),
                     spool_bytes(self.out / "spool"), exit_code)


def consumer_duplicates(log: Path) -> int:
    """The consumer's `duplicates N` counter from its last line (repeats it dropped)."""
    for line in reversed(log.read_text().splitlines() if log.exists() else []):
        words = line.replace(",", " ").split()
        if "duplicates" in words:
            return int(words[words.index("duplicates") + 1])
    return -1


def run_soak(out: Path, minutes: float, seed: int, fault_every_s: float, sample_s: float) -> Verdict:
    if out.exists() and any(out.iterdir()):
        # the consumer appends, Redis and the spool keep their data: an old run's would mix in
        raise SystemExit(f"{out} is not empty: the soak needs a new or empty folder")
    out.mkdir(parents=True, exist_ok=True)
    soak = Soak(out, minutes, seed, fault_every_s, sample_s)
    started, load, cpu = time.monotonic(), os.getloadavg()[0], cpu_seconds()
    try:
        soak.start_servers()
        servers = time.monotonic()
        soak.start_detstream()
        print(f"servers up in {servers - started:.1f} s, every healthy source streaming "
              f"{time.monotonic() - servers:.1f} s later; soaking for {minutes:g} min: {out}", flush=True)
        soak.soak()
        stopping = time.monotonic()
        exit_code = soak.finish()
        print(f"detstream and the consumer stopped in {time.monotonic() - stopping:.1f} s", flush=True)
    finally:
        soak.stop_all()
    verdict = soak.verdict(exit_code)
    plot(soak.samples, soak.states, soak.faults, verdict.warmup_s, out / "soak.png",
         f"detstream soak, {minutes:g} min, seed {seed}: {'PASS' if verdict.passed else 'FAIL'}")
    # the run's facts, as every BENCHMARKS.md section states them (cpu: detstream and the
    # consumer are reaped children, so their CPU time counts)
    run = {"machine": machine(), "load_average": load, "elapsed_s": round(time.monotonic() - started, 1),
           "cpu_s": round(cpu_seconds() - cpu, 1), "finished": now(), "minutes": minutes, "seed": seed,
           "sample_s": sample_s}
    record = {**verdict.as_dict(), "run": run,
              "faults": [vars(f) | {"recovery_s": f.recovery_s} for f in soak.faults]}
    (out / "verdict.json").write_text(json.dumps(record, indent=2, default=str) + "\n")
    (out / "verdict.md").write_text(markdown(verdict, soak.faults))
    return verdict


def summary(out: Path) -> dict:
    """The verdict of the soak in `out` as BENCHMARKS.md's section 16 shows it."""
    record = json.loads((out / "verdict.json").read_text())
    run = record.get("run", {})
    folder = out.resolve()
    return {"passed": record["passed"], "warmup_s": record["warmup_s"], "checks": record["checks"],
            "numbers": record["numbers"], "seed": run.get("seed", "not recorded"), "sample_s": run.get("sample_s", 5.0),
            "folder": str(folder.relative_to(REPO)) if folder.is_relative_to(REPO) else str(folder)}


def record_section(out: Path) -> None:
    """Section `soak` of bench/results.json and BENCHMARKS.md from the soak in `out`. A folder
    from before the harness kept the run's facts gives its duration and the verdict file's
    time, and says the load and CPU were not recorded."""
    from bench.results import record

    path = out / "verdict.json"
    run = json.loads(path.read_text()).get("run") or {
        "machine": machine(), "load_average": None, "cpu_s": None,
        "elapsed_s": json.loads(path.read_text())["numbers"]["duration_s"],
        "finished": datetime.fromtimestamp(path.stat().st_mtime).astimezone().isoformat(timespec="seconds")}
    record("soak", {**{k: run[k] for k in ("machine", "load_average", "elapsed_s", "cpu_s", "finished")},
                    "result": summary(out)})
    print("recorded in bench/results.json and BENCHMARKS.md (section 16)", flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.soak", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, default=30.0)
    parser.add_argument("--out", type=Path, help="output folder (default runs/soak-<UTC timestamp>)")
    parser.add_argument("--seed", type=int, default=1, help="the faults' random schedule")
    parser.add_argument("--fault-every", type=float, default=120.0, metavar="S",
                        help="mean seconds between two faults of one kind (Redis restarts: 1.5x)")
    parser.add_argument("--sample-every", type=float, default=5.0, metavar="S", help="seconds between samples")
    parser.add_argument("--record", action="store_true", help="put the verdict into BENCHMARKS.md (section 16)")
    parser.add_argument("--record-only", type=Path, metavar="DIR",
                        help="record the verdict of the soak in DIR, without soaking")
    args = parser.parse_args(argv)
    if args.record_only:
        record_section(args.record_only)
        return 0
    stamp = datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S")
    out = args.out or REPO / "runs" / f"soak-{stamp}"
    verdict = run_soak(out, args.minutes, args.seed, args.fault_every, args.sample_every)
    print((out / "verdict.md").read_text())
    if args.record:
        record_section(out)
    return 0 if verdict.passed else 1


if __name__ == "__main__":
    sys.exit(main())
