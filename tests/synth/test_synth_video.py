"""The MP4 writer: decodable, frame-exact COCO ground truth, deterministic."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import av
import numpy as np
import pytest
from support import VIDEO_ARGS
from pycocotools import mask as mask_utils
from pycocotools.coco import COCO

from synth.video import iter_frames, write_video

# pycocotools' mask.decode trips a numpy 2 deprecation warning on every call.
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


def test_video_decodes_to_one_frame_per_image(synth_video: tuple[Path, dict[str, Any]]) -> None:
    path, coco = synth_video
    assert len(coco["images"]) == round(VIDEO_ARGS["seconds"] * VIDEO_ARGS["fps"])
    with av.open(str(path)) as container:
        frames = [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]
    with av.open(str(path)) as container:
        times = [f.time for f in container.decode(video=0)]
    assert len(frames) == len(coco["images"])
    assert all(f.shape == (VIDEO_ARGS["height"], VIDEO_ARGS["width"], 3) for f in frames)
    assert times == pytest.approx([img["pts"] for img in coco["images"]], abs=1e-6)
    # Decoded frames match the rendered ones closely (H.264 at CRF 18; most of the
    # difference is the sensor noise the encoder smooths away).
    rendered = [image for _, image, _ in iter_frames(**VIDEO_ARGS)]
    errors = [np.abs(a.astype(int) - b).mean() for a, b in zip(frames, rendered, strict=True)]
    assert max(errors) < 5.0


def test_coco_layout(synth_video: tuple[Path, dict[str, Any]]) -> None:
    path, coco = synth_video
    assert json.loads(path.with_suffix(".json").read_text()) == coco
    assert [c["name"] for c in coco["categories"]] == ["person", "car", "bicycle", "dog"]
    assert [c["id"] for c in coco["categories"]] == [1, 2, 3, 4]
    assert all(c["supercategory"] for c in coco["categories"])
    assert coco["info"]["seed"] == VIDEO_ARGS["seed"]
    assert coco["info"]["args"]["fps"] == VIDEO_ARGS["fps"]
    for index, image in enumerate(coco["images"]):
        assert image["id"] == index + 1
        assert image["frame_index"] == index
        assert image["file_name"] == f"clip.mp4#{index}"
        assert image["pts"] == pytest.approx(index / VIDEO_ARGS["fps"])
    ids = [a["id"] for a in coco["annotations"]]
    assert len(ids) == len(set(ids)) > 50
    api = COCO(str(path.with_suffix(".json")))
    assert sorted(api.getCatIds()) == [1, 2, 3, 4]


def test_annotations_match_their_masks(synth_video: tuple[Path, dict[str, Any]]) -> None:
    _, coco = synth_video
    by_image: dict[int, np.ndarray] = {}
    for ann in coco["annotations"]:
        m = mask_utils.decode(ann["segmentation"])
        assert m.shape == (VIDEO_ARGS["height"], VIDEO_ARGS["width"])
        assert list(mask_utils.toBbox(ann["segmentation"])) == ann["bbox"]
        assert int(m.sum()) == ann["area"] == int(mask_utils.area(ann["segmentation"]))
        assert ann["iscrowd"] == 0 and ann["track_id"] >= 1 and 0 <= ann["occluded"] < 1
        # the whole object's box holds the visible one, and is it when nothing is hidden
        x, y, w, h = ann["bbox"]
        ax, ay, aw, ah = ann["amodal_bbox"]
        assert ax <= x and ay <= y and x + w <= ax + aw and y + h <= ay + ah
        assert (ann["amodal_bbox"] == ann["bbox"]) == (ann["occluded"] == 0)
        union = by_image.setdefault(ann["image_id"], np.zeros(m.shape, np.int32))
        union += m
    assert all(u.max() <= 1 for u in by_image.values()), "visible masks overlap"


def test_same_seed_same_json_other_seed_differs(tmp_path: Path,
                                                synth_video: tuple[Path, dict[str, Any]]) -> None:
    path, _ = synth_video
    again = tmp_path / "clip.mp4"
    write_video(again, **VIDEO_ARGS)
    assert again.with_suffix(".json").read_bytes() == path.with_suffix(".json").read_bytes()
    other = write_video(tmp_path / "other.mp4", **{**VIDEO_ARGS, "seed": VIDEO_ARGS["seed"] + 1})
    assert other["annotations"] != json.loads(path.with_suffix(".json").read_text())["annotations"]


@pytest.mark.parametrize("kwargs", [{"width": 321}, {"seconds": -1.0}, {"seconds": 0.001}, {"fps": 0},
                                    {"objects": -1}, {"objects": 51}, {"crf": 60}])
def test_bad_arguments_raise_value_error(tmp_path: Path, kwargs: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        write_video(tmp_path / "x.mp4", **{**VIDEO_ARGS, **kwargs})
    assert not (tmp_path / "x.mp4").exists()
