"""Benchmarks: `make bench` runs them all (`python -m bench.run_all`), writes
bench/results.json and renders BENCHMARKS.md from it.

- `bench.run_all`: the entry point; `bench.sections` what each section measures and its
  budget; `bench.report` the markdown (rendering only; `bench.markdown` its tables and
  verdicts, `bench.tracking_report` the tracking section's);
- one script per section, each also runnable alone and printing JSON:
  `python -m bench.decode_fps`, `engine_latency`, `efficiency`, `live_overload`,
  `scaling`, `redis_publish`, `backends`, `metrics_overhead`, `coco_models`,
  `tracking_cost`, `tracking_quality` (together the tracking section), `clips_cost`,
  and on request `ladder`, `int8`, `capacity`;
- `bench.common`: what the scripts share (machine, demo video and its camera-like stream,
  engine package, one run's frames/s, the detector alone, the naive loop, JSON output, the
  counting lines, a process's RSS and CPU, frame ages on the camera's clock).

Scripts import each other only through `bench.common`; run them from the repository root.
Idle worker threads sleep here as they do under the `detstream` command, so the figures
are what its users get (pipeline/core/threads.py).
"""

from pipeline.core.threads import sleep_idle_threads

sleep_idle_threads()
