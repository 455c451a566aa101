"""`detstream models`: embedded models, torchvision COCO models (cached or not) and the
packages in the cache, listed from metadata, through the real command."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from engines.model_file import load_model
from engines.package_cache import cached_package
from engines.torchvision_models import cache_file, coco_weights

DETSTREAM = Path(sys.executable).with_name("detstream")


@pytest.fixture(scope="module")
def homes(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """A torch hub cache holding one torchvision weights file, a package cache holding one
    exported package."""
    root = tmp_path_factory.mktemp("catalog")
    torch_home, cache = root / "torch", root / "cache"
    env = {**os.environ, "TORCH_HOME": str(torch_home), "DETSTREAM_CACHE": str(cache)}
    staged = torch_home / "hub" / "checkpoints" / cache_file(coco_weights("fasterrcnn_mobilenet_v3_large_320_fpn")).name
    staged.parent.mkdir(parents=True)
    staged.write_bytes(b"\0" * 2_000_000)  # listing never reads weights: its presence is what counts
    before = os.environ.get("DETSTREAM_CACHE")
    os.environ["DETSTREAM_CACHE"] = str(cache)
    try:
        model, info = load_model("embedded:faster-compact-synth")
        cached_package("embedded:faster-compact-synth", model, info)
    finally:
        os.environ["DETSTREAM_CACHE"] = before or ""
    return env


def models(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    result = subprocess.run([str(DETSTREAM), "models", *args], env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    return result


def test_json_lists_the_three_kinds(homes):
    entries = {e["spec"]: e for e in json.loads(models(homes, "--json").stdout)}
    kinds = {e["kind"] for e in entries.values()}
    assert kinds == {"embedded", "torchvision", "package"}

    box, mask = entries["embedded:faster-compact-synth"], entries["embedded:mask-compact-synth"]
    assert box["classes"] == ["person", "car", "bicycle", "dog"] and box["masks"] is False and box["ready"]
    assert mask["masks"] is True and mask["architecture"] == "maskrcnn_compact_px"
    assert box["backends"] == ["torch", "onnxruntime"]

    coco = [e for e in entries.values() if e["kind"] == "torchvision"]
    assert len(coco) == 6
    small = entries["torchvision:fasterrcnn_mobilenet_v3_large_320_fpn"]
    assert small["ready"] and small["size_mb"] == 2.0 and small["input_size"] == [320, 576]
    big = entries["torchvision:maskrcnn_resnet50_fpn_v2"]
    assert not big["ready"] and big["masks"] and big["input_size"] == [768, 1344]
    assert coco_weights("maskrcnn_resnet50_fpn_v2").url in big["note"]
    assert len(big["classes"]) == 80 and "N/A" not in big["classes"] and "person" in big["classes"]

    (package,) = [e for e in entries.values() if e["kind"] == "package"]
    assert package["architecture"] == "fasterrcnn_compact" and "onnxruntime" in package["backends"]
    assert package["note"] == "exported from embedded:faster-compact-synth"
    assert Path(package["file"]).parent == Path(homes["DETSTREAM_CACHE"]) / "packages"


def test_table_names_every_model_and_what_to_download(homes):
    out = models(homes).stdout
    for spec in ("embedded:faster-compact-synth", "torchvision:fasterrcnn_resnet50_fpn", "fasterrcnn_compact"):
        assert spec in out
    assert "torchvision:fasterrcnn_resnet50_fpn: not in the torch hub cache: downloaded on first use" in out
