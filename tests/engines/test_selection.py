"""Selection: kept classes, per-class thresholds, never-emitted names, the engine's floor."""

from __future__ import annotations

import math

import pytest
import torch

from engines.base import ModelInfo
from engines.loading import score_floor
from engines.outputs import Selection
from pipeline.batch.config import load_batch_settings
from pipeline.core.config import ModelConfig, load_config
from pipeline.core.errors import ConfigError
from pipeline.core.types import RawOutput

# torchvision's COCO list starts like this: the background, classes, and `N/A` for unused ids
INFO = ModelInfo("coco-like", "test", ("__background__", "person", "N/A", "car", "dog"), (64, 64), score_threshold=0.5)


def candidates(*rows: tuple[int, float]) -> RawOutput:
    """One candidate per (label, score), boxes far apart so NMS keeps them all."""
    boxes = torch.tensor([[20.0 * i, 0.0, 20.0 * i + 10, 10.0] for i in range(len(rows))]).reshape(-1, 4)
    return RawOutput(boxes, torch.tensor([s for _, s in rows]), torch.tensor([label for label, _ in rows]))


def kept(selection: Selection, raw: RawOutput) -> list[tuple[int, float]]:
    return sorted((int(raw.labels[i]), round(float(raw.scores[i]), 3)) for i in selection.keep(raw))


ALL = candidates((0, 0.99), (1, 0.3), (1, 0.7), (2, 0.99), (3, 0.45), (3, 0.6), (4, 0.55))


def test_default_is_the_model_threshold_on_every_real_class():
    selection = Selection.for_model(ModelConfig(), INFO)
    assert selection.thresholds.tolist() == [math.inf, 0.5, math.inf, 0.5, 0.5]
    assert selection.labels == {1, 3, 4}
    assert kept(selection, ALL) == [(1, 0.7), (3, 0.6), (4, 0.55)]


def test_classes_keep_only_those():
    selection = Selection.for_model(ModelConfig(classes=("person", "dog")), INFO)
    assert selection.labels == {1, 4}
    assert kept(selection, ALL) == [(1, 0.7), (4, 0.55)]


def test_per_class_thresholds_apply_above_and_below_the_global_one():
    config = ModelConfig(score_threshold=0.5, score_thresholds={"person": 0.25, "dog": 0.6})
    selection = Selection.for_model(config, INFO)
    assert kept(selection, ALL) == [(1, 0.3), (1, 0.7), (3, 0.6)]
    assert selection.floor == pytest.approx(0.25)


def test_background_and_na_are_never_emitted_whatever_the_settings():
    uniform = Selection.uniform(0.0, 0.5, 100, INFO.class_names)
    for selection in (uniform, Selection.for_model(ModelConfig(score_threshold=0.0), INFO)):
        assert selection.labels == {1, 3, 4}
        assert {label for label, _ in kept(selection, ALL)} == {1, 3, 4}


@pytest.mark.parametrize(
    "config, key, bad",
    [
        (ModelConfig(classes=("person", "cat")), "model.classes", "'cat'"),
        (ModelConfig(classes=("N/A",)), "model.classes", "'N/A'"),
        (ModelConfig(score_thresholds={"__background__": 0.1}), "model.score_thresholds", "'__background__'"),
    ],
)
def test_unknown_names_are_config_errors_naming_the_allowed_ones(config, key, bad):
    with pytest.raises(ConfigError) as error:
        Selection.for_model(config, INFO)
    assert str(error.value) == f"{key}: {bad} is not a class of model coco-like (allowed: person, car, dog)"


def test_a_source_error_names_the_source_key():
    with pytest.raises(ConfigError, match=r"^sources\.1\.classes: 'cat' is not a class"):
        Selection.for_model(ModelConfig(classes=("cat",)), INFO, "sources.1")


def test_a_source_replaces_only_the_keys_it_sets():
    config = load_config(None, {
        "sources": ["a.mp4", {"uri": "b.mp4", "classes": "car, dog", "score_threshold": 0.2}],
        "model.classes": ["person"],
        "model.score_thresholds": {"dog": 0.7},
    })
    a, b = (config.source_model(s) for s in config.sources)
    assert a is config.model
    assert (b.classes, b.score_threshold, b.score_thresholds) == (("car", "dog"), 0.2, {"dog": 0.7})
    assert kept(Selection.for_model(b, INFO), ALL) == [(3, 0.45), (3, 0.6)]  # the dog at 0.55 needs 0.7


def test_the_engine_floor_is_the_lowest_threshold_in_effect():
    config = load_config(None, {
        "sources": ["a.mp4", {"uri": "b.mp4", "score_thresholds": {"car": 0.15}}, {"uri": "c.mp4", "score_threshold": 0.3}],
        "model.score_threshold": 0.8,
        "model.score_thresholds": {"person": 0.4},
        "tracking.enabled": False,
    })
    floor = score_floor(INFO.score_threshold, config.model.score_threshold, config.thresholds())
    selections = [Selection.for_model(config.source_model(s), INFO) for s in config.sources]
    assert floor == pytest.approx(min(s.floor for s in selections)) == 0.15
    assert config.low_floor() is None
    # tracked sources need the tracker's weak candidates too: the floor goes down to its low score,
    # while the emitted thresholds (the floor of masks) stay as they were
    tracked = config.model_copy(update={"tracking": config.tracking.model_copy(update={"enabled": True})})
    assert tracked.thresholds() == config.thresholds()
    assert score_floor(INFO.score_threshold, 0.8, tracked.thresholds(), tracked.low_floor()) == tracked.tracking.low_score
    assert score_floor(INFO.score_threshold, 0.8, tracked.thresholds()) == 0.15
    # nothing set: the global threshold, else the model's own
    assert score_floor(0.5, None, load_config().thresholds()) == 0.5
    assert score_floor(0.5, 0.9, ()) == 0.9
    # a per-class threshold below the model's own default lowers the floor too
    assert score_floor(0.5, None, ModelConfig(score_thresholds={"dog": 0.2}).thresholds()) == 0.2


def test_batch_fingerprint_follows_classes_and_thresholds():
    base = load_batch_settings(None, {"tracking.enabled": False})
    # unchanged for settings without the new keys: files finished before them stay finished
    assert base.fingerprint() == "76573b73bf349fec"
    # tracking (on by default) adds track ids and events files: those files are done again
    tracked = load_batch_settings(None, {})
    assert tracked.fingerprint() != base.fingerprint()
    zoned = load_batch_settings(None, {"lines": [{"name": "l", "points": [[0, 0], [1, 1]], "coordinates": "normalized"}]})
    assert zoned.fingerprint() != tracked.fingerprint()
    person = load_batch_settings(None, {"model.classes": "person,car"})
    assert person.fingerprint() != base.fingerprint()
    assert load_batch_settings(None, {"model.classes": ["car", "person"]}).fingerprint() == person.fingerprint()
    low = load_batch_settings(None, {"model.score_thresholds": {"person": 0.2}})
    high = load_batch_settings(None, {"model.score_thresholds": {"person": 0.3}})
    assert len({base.fingerprint(), low.fingerprint(), high.fingerprint()}) == 3
