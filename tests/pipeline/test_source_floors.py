"""Sources added while running must fit the engine loaded at start: its score floor, and
for a mask model the floor of its masks (weak candidates kept for tracking have none)."""

from __future__ import annotations

import dataclasses

import pytest

from engines.base import ModelInfo
from pipeline.core.config import RunConfig
from pipeline.core.context import RunContext
from pipeline.core.errors import ConfigError
from pipeline.run.sources import Sources

BOXES = ModelInfo(name="m", architecture="fasterrcnn_compact", class_names=("__background__", "person"), input_size=(64, 64))
MASKS = dataclasses.replace(BOXES, has_masks=True)


def attached(info: ModelInfo) -> Sources:
    sources = Sources(RunConfig(), RunContext(metrics_enabled=False))
    sources.attach(info, None, [], floor=0.1, mask_floor=0.5)  # type: ignore[arg-type]  # no source starts
    return sources


def test_a_threshold_under_the_mask_floor_is_refused_for_a_mask_model():
    with pytest.raises(ConfigError, match="below 0.5, the lowest score the engine computes masks for"):
        attached(MASKS).add({"uri": "a.mp4", "score_threshold": 0.3, "enabled": False})
    with pytest.raises(ConfigError, match="below 0.5"):
        attached(MASKS).add({"uri": "a.mp4", "score_thresholds": {"person": 0.2}, "enabled": False})
    # at the floor, or for a box model, the same threshold is fine
    assert attached(MASKS).add({"uri": "a.mp4", "score_threshold": 0.5, "enabled": False})["name"] == "a.mp4"
    assert attached(BOXES).add({"uri": "a.mp4", "score_threshold": 0.3, "enabled": False})["name"] == "a.mp4"


def test_a_score_under_the_engine_floor_is_refused_for_any_model():
    with pytest.raises(ConfigError, match="a score of 0.05 is below the engine's floor 0.1"):
        attached(BOXES).add({"uri": "a.mp4", "tracking": {"low_score": 0.05}, "enabled": False})
