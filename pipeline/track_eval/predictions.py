"""The tracker's output, read back from `detstream.detections/v1` messages (JSON lines).

Rules:
- One message per processed frame. A file source with stride S puts out every S-th
  decoded frame (stages/reader.py), so the message with `seq` k is frame k * S: its
  ground-truth image is `VIDEO#(k*S)`. Where the ground truth gives each image's `pts`,
  the message's pts must agree to within half a frame, or the two do not describe the
  same frames (an error, not a silent misalignment).
- A detection with `"track_id": null` belongs to no confirmed track: it is not tracker
  output and is left out. Messages with no `track_id` key at all come from a run without
  tracking: an error.
"""

from __future__ import annotations

import json
from pathlib import Path

from pipeline.core.errors import DetstreamError
from pipeline.track_eval.referee import TrackedBox
from pipeline.track_eval.truth import GroundTruth


def _tolerance(pts: dict[int, float]) -> float | None:
    """Half the ground truth's frame interval (None: fewer than two timed frames)."""
    ordered = [pts[i] for i in sorted(pts)]
    gaps = [b - a for a, b in zip(ordered, ordered[1:]) if b > a]
    return min(gaps) / 2 if gaps else None


def read_tracked(path: Path, stride: int, truth: GroundTruth) -> dict[int, list[TrackedBox]]:
    """Frame index -> the tracker's boxes, for every message in the JSON-lines file `path`."""
    frames: dict[int, list[TrackedBox]] = {}
    tolerance = _tolerance(truth.pts)
    saw_detection = saw_track_key = False
    with open(path, encoding="utf-8") as lines:
        for line in lines:
            message = json.loads(line)
            index = message["seq"] * stride
            if index not in truth.frames:
                raise DetstreamError(
                    f"{path}: seq {message['seq']} is frame {index} (stride {stride}), which {truth.path} does not list"
                )
            expected = truth.pts.get(index)
            if tolerance is not None and expected is not None and abs(message["pts"] - expected) > tolerance:
                raise DetstreamError(
                    f"frame {index} of {truth.video} is at {message['pts']:.3f} s in the video but at {expected:.3f} s "
                    f"in {truth.path}: the annotations do not describe this video's frames"
                )
            boxes = frames.setdefault(index, [])
            for det in message["detections"]:
                saw_detection = True
                saw_track_key = saw_track_key or "track_id" in det
                if det.get("track_id") is not None:
                    boxes.append(TrackedBox(int(det["track_id"]), det["label"], tuple(det["box"]), float(det["score"])))
    if saw_detection and not saw_track_key:
        raise DetstreamError("the run's detections carry no track_id: the pipeline did not track")
    return frames
