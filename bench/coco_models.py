"""torchvision's COCO R-CNNs on this machine: engine latency per backend at batch 1 and 2,
at each model's default input size, PyTorch against ONNX Runtime (issue #15).

The weights are random (torchvision's files cannot be downloaded here), staged under the
exact file name torchvision expects in a private torch hub folder, so the models load
through the same `torchvision:NAME` path users take. Random weights cost the same in the
backbone, the RPN and the box head (a fixed number of proposals); but few candidates pass
the score threshold, so a mask model's mask head runs on almost none: its figures are a
lower bound for real weights on a busy scene.

    .venv/bin/python -m bench.coco_models [--calls 3] [--json out.json]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import torch

from bench.common import DEMO_VIDEO, ensure_video, machine, print_result
from bench.engine_latency import measure as measure_engine
from bench.engine_latency import read_frames
from engines.models import build_model
from engines.torchvision_models import cache_file, coco_weights

MODELS = ("fasterrcnn_mobilenet_v3_large_320_fpn", "fasterrcnn_resnet50_fpn_v2", "maskrcnn_resnet50_fpn_v2")
BATCHES = (1, 2)


def stage_random_weights(name: str) -> Path:
    """Random weights of `name` where torchvision looks for its COCO file (the hub dir set now)."""
    weights = coco_weights(name)
    path = cache_file(weights)
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        torch.save(build_model(name, len(weights.meta["categories"])).state_dict(), path)
    return path


def measure(video: Path, calls: int, workdir: Path, models: tuple[str, ...] = MODELS) -> dict:
    hub = torch.hub.get_dir()
    torch.hub.set_dir(str(workdir / "hub"))  # private: never the user's cache
    try:
        images = read_frames(video, max(BATCHES))
        results = []
        for name in models:
            stage_random_weights(name)
            results.append(measure_engine(f"torchvision:{name}", images, calls, workdir, BATCHES))
    finally:
        torch.hub.set_dir(hub)
    return {"models": results, "calls": calls, "weights": "random (same architecture and size as COCO's)"}


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.coco_models", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--video", type=Path, default=DEMO_VIDEO)
    parser.add_argument("--calls", type=int, default=3, help="timed calls per backend and batch size (alternating)")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    ensure_video(args.video)
    with tempfile.TemporaryDirectory() as tmp:
        result = measure(args.video, args.calls, Path(tmp))
    print_result({"machine": machine(), **result}, args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
