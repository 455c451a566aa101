"""eval-track's inputs: the ground truth read from a synth clip's COCO file, messages read
back into frames, and the one-line errors for bad input (all before any model loads)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from pipeline.cli import build_parser, main
from pipeline.core.errors import DatasetError, DetstreamError
from pipeline.core.messages import event_id
from pipeline.track_eval.predictions import read_tracked
from pipeline.track_eval.referee import DontCare
from pipeline.track_eval.truth import load_truth


@pytest.fixture
def clip(tmp_path: Path, synth_clip: Path) -> Path:
    """A private copy of the session's synth clip (10 frames) and its ground truth."""
    shutil.copy(synth_clip, tmp_path / "clip.mp4")
    shutil.copy(synth_clip.with_suffix(".json"), tmp_path / "clip.json")
    return tmp_path / "clip.mp4"


def edit_truth(clip: Path, edit) -> None:
    path = clip.with_suffix(".json")
    data = json.loads(path.read_text())
    edit(data)
    path.write_text(json.dumps(data))


def test_ground_truth_of_a_synth_clip(clip):
    truth = load_truth(clip.with_suffix(".json"), "clip.mp4")
    coco = json.loads(clip.with_suffix(".json").read_text())
    assert sorted(truth.frames) == list(range(10))
    assert sum(map(len, truth.frames.values())) == len(coco["annotations"])
    assert truth.classes == ("person", "car", "bicycle", "dog")
    assert truth.pts[5] == pytest.approx(5 / 25)
    first = coco["annotations"][0]
    x, y, w, h = first["bbox"]
    obj = next(o for o in truth.frames[first["image_id"] - 1] if o.track_id == first["track_id"])
    assert obj.box == (x, y, x + w, y + h) and obj.occluded == first["occluded"]
    ax, ay, aw, ah = first["amodal_bbox"]
    assert obj.amodal == (ax, ay, ax + aw, ay + ah)


def message(seq: int, pts: float, detections: list[dict]) -> dict:
    return {"schema": "detstream.detections/v1", "event_id": event_id("clip.mp4", seq), "source": "clip.mp4",
            "seq": seq, "pts": pts, "detections": detections}


def test_messages_map_to_frames_by_seq_and_stride(clip, tmp_path):
    truth = load_truth(clip.with_suffix(".json"), "clip.mp4")
    box = [10.0, 10.0, 30.0, 50.0]
    lines = [
        message(0, 0.0, [{"box": box, "score": 0.9, "class_id": 1, "label": "person", "track_id": 4},
                         {"box": box, "score": 0.8, "class_id": 2, "label": "car", "track_id": None}]),
        message(1, 3 / 25, []),
        message(2, 6 / 25, [{"box": box, "score": 0.7, "class_id": 1, "label": "person", "track_id": 4}]),
    ]
    path = tmp_path / "m.jsonl"
    path.write_text("".join(json.dumps(m) + "\n" for m in lines))
    frames = read_tracked(path, 3, truth)
    assert sorted(frames) == [0, 3, 6]  # every 3rd frame
    assert [(b.track_id, b.label, b.box) for b in frames[0]] == [(4, "person", tuple(box))]  # null: not tracker output
    assert frames[3] == []
    # pts one frame off: not these frames
    path.write_text(json.dumps(message(1, 4 / 25, [])) + "\n")
    with pytest.raises(DetstreamError, match="do not describe this video's frames"):
        read_tracked(path, 3, truth)
    # no track_id key at all: a run without tracking
    path.write_text(json.dumps(message(0, 0.0, [{"box": box, "score": 0.9, "class_id": 1, "label": "person"}])) + "\n")
    with pytest.raises(DetstreamError, match="did not track"):
        read_tracked(path, 1, truth)


def test_missing_video_and_annotations_are_one_line_errors(clip, caplog):
    assert main(["eval-track", str(clip.parent / "none.mp4")]) == 2
    assert "file not found: " in caplog.text and "none.mp4" in caplog.text
    caplog.clear()
    assert main(["eval-track", str(clip), "--annotations", str(clip.parent / "none.json")]) == 2
    assert "none.json: file not found" in caplog.text


def test_annotations_without_track_ids_are_an_error(clip, caplog):
    edit_truth(clip, lambda data: [a.pop("track_id") for a in data["annotations"]])
    assert main(["eval-track", str(clip)]) == 2
    assert "annotations of clip.mp4 have no int track_id" in caplog.text
    with pytest.raises(DatasetError, match="no int track_id"):
        load_truth(clip.with_suffix(".json"), "clip.mp4")


def test_a_malformed_amodal_box_is_an_error_and_a_missing_one_is_not(clip):
    def edit(data):
        data["annotations"][0]["amodal_bbox"] = [1, 2, -3]
        for ann in data["annotations"][1:]:
            del ann["amodal_bbox"]

    edit_truth(clip, edit)
    with pytest.raises(DatasetError, match=r"amodal_bbox \[1, 2, -3\] is not \[x, y, w, h\]"):
        load_truth(clip.with_suffix(".json"), "clip.mp4")
    edit_truth(clip, lambda data: data["annotations"][0].pop("amodal_bbox"))
    truth = load_truth(clip.with_suffix(".json"), "clip.mp4")
    assert all(o.amodal is None for objects in truth.frames.values() for o in objects)


def test_annotations_of_another_video_or_frame_count_are_errors(clip, caplog):
    renamed = clip.with_name("other.mp4")
    shutil.copy(clip, renamed)
    assert main(["eval-track", str(renamed), "--annotations", str(clip.with_suffix(".json"))]) == 2
    assert "has no frames of other.mp4: it lists clip.mp4" in caplog.text
    caplog.clear()
    edit_truth(clip, lambda data: data["images"].pop())
    assert main(["eval-track", str(clip)]) == 2
    assert "lists 9 frames of clip.mp4, the video has 10" in caplog.text


def test_bad_flags_and_a_config_with_several_sources(clip, tmp_path, caplog, capsys):
    with pytest.raises(SystemExit):
        main(["eval-track", str(clip), "--stride", "0"])
    assert "expected a positive integer" in capsys.readouterr().err
    config = tmp_path / "two.yaml"
    config.write_text(f"sources: [{clip}, {clip}]\n")
    assert main(["eval-track", str(clip), "--config", str(config)]) == 2
    assert "lists 2 sources; eval-track scores one video at a time" in caplog.text


def test_the_flags_defaults_are_the_referees():
    args = build_parser().parse_args(["eval-track", "v.mp4"])
    assert DontCare(args.min_height, args.max_occluded) == DontCare()


def test_the_run_settings_take_the_config_files_one_source_with_tracking_on(tmp_path):
    from pipeline.track_eval.evaluate import tracking_config

    config = tmp_path / "one.yaml"
    config.write_text(
        "tracking: {enabled: false}\n"
        "sources:\n"
        "  - {uri: elsewhere.mp4, stride: 2, classes: [person], tracking: {min_hits: 2},\n"
        "     lines: [{name: door, points: [[0, 10], [50, 10]]}]}\n"
        "sinks: [jsonl:never.jsonl]\n"
    )
    video = tmp_path / "v.mp4"
    settings = tracking_config(video, config, {"model.score_threshold": 0.3}, {}, None, None)
    (source,) = settings.sources
    assert (source.uri, source.stride, source.classes, source.lines[0].name) == (str(video), 2, ("person",), "door")
    assert settings.tracking.enabled and settings.source_tracking(source).min_hits == 2
    assert settings.model.score_threshold == 0.3
    settings = tracking_config(video, config, {}, {}, 3, "iou")
    assert settings.sources[0].stride == 3 and settings.source_tracking(settings.sources[0]).method == "iou"
    assert tracking_config(video, None, {}, {}, None, None).sources[0].stride == 1
