"""`detstream batch --ray` on a local Ray cluster: same results as a local run, and a
worker killed mid-run costs nothing but time."""

from __future__ import annotations

import functools
import os
from pathlib import Path

import pytest
import ray  # the optional extra; `make test` installs it, so a missing ray fails here

from blobbatch import BAD, GOOD, DyingBlobEngine, job, results


@pytest.fixture(scope="module")
def cluster():
    """A local cluster with the machine's 2 CPUs: two workers of one CPU each."""
    os.environ["RAY_USAGE_STATS_ENABLED"] = "0"
    here = Path(__file__).parent
    # workers unpickle the test engines by module name: they need the test folders too
    path = os.pathsep.join([str(here), str(here.parent), os.environ.get("PYTHONPATH", "")])
    for attempt in (1, 2):  # Ray gives its raylet 30 s to register: a busy machine can miss that
        try:
            ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, runtime_env={"env_vars": {"PYTHONPATH": path}})
            break
        except Exception:
            ray.shutdown()
            if attempt == 2:
                raise
    yield
    ray.shutdown()


def test_a_ray_run_gives_the_same_results_and_manifest_as_a_local_run(tmp_path, collection, cluster):
    local, remote = tmp_path / "local", tmp_path / "ray"
    local_report = job([str(collection)], local).run()
    ray_report = job([str(collection)], remote).run(use_ray=True)
    assert ray_report.count("ok") == GOOD and ray_report.exit_code == 1
    assert {f.path: (f.status, f.reason, f.frames, f.detections) for f in ray_report.files.values()} == {
        f.path: (f.status, f.reason, f.frames, f.detections) for f in local_report.files.values()
    }
    assert {f.path for f in ray_report.files.values() if f.status == "failed"} == set(BAD)
    assert (remote / "manifest.jsonl").read_bytes() == (local / "manifest.jsonl").read_bytes()
    for rel in (f.path for f in local_report.files.values() if f.status == "ok"):
        assert results(remote, rel) == results(local, rel), rel
    # resuming works across the two: the Ray run's manifest makes a local run skip all
    assert job([str(collection)], remote).run().count("skipped") == GOOD


def test_killing_a_worker_mid_run_still_completes_every_file(tmp_path, collection, cluster):
    marker = tmp_path / "killed-one-worker"
    engine = functools.partial(DyingBlobEngine, str(marker))
    report = job([str(collection)], tmp_path / "out", engine=engine).run(use_ray=True)
    assert marker.exists()  # a worker did die (SIGKILL, mid-file)
    assert report.count("ok") == GOOD and report.count("failed") == 2 and not report.errors
    for rel in (f.path for f in report.files.values() if f.status == "ok"):
        assert [m["seq"] for m in results(tmp_path / "out", rel)] == list(range(report.files[rel].frames))
