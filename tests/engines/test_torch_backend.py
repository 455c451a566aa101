"""The split engine (pipeline preprocess -> parts + shared glue -> postprocess) gives the
detections of torchvision's own end-to-end forward."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from engines.models import build_model
from engines.base import ModelInfo
from engines.loading import load_engine
from engines.torch_backend import TorchEngine
from pipeline.core.errors import ModelError
from pipeline.core.types import Frame
from engines.outputs import Selection, finish_frame
from engines.inputs import Normalizer
from synth.video import iter_frames

SIZE = (320, 576)


def canonical(boxes: np.ndarray, scores: np.ndarray, labels: np.ndarray) -> np.ndarray:
    return np.lexsort((boxes[:, 1].round(2), boxes[:, 0].round(2), labels, -scores.round(4)))


@pytest.mark.parametrize(
    "architecture, masks", [("fasterrcnn_compact", False), ("maskrcnn_compact", True), ("maskrcnn_compact_px", True)]
)
def test_same_detections_as_torchvision_forward(architecture, masks):
    # an image exactly the input size: torchvision's transform then does not resize
    _, image, _ = next(iter_frames(seed=3, width=SIZE[1], height=SIZE[0], seconds=0.04))
    model = build_model(architecture, 5, seed=1, min_size=SIZE[0], max_size=SIZE[1])
    refine = getattr(model.roi_heads.mask_predictor, "refine", None)
    if refine is not None:  # the pixel refinement starts at zero: make it count
        torch.nn.init.normal_(refine.logits.weight, 0, 0.5, generator=torch.Generator().manual_seed(2))
    info = ModelInfo("t", architecture, ("__background__", "a", "b", "c", "d"), SIZE, has_masks=masks)
    with torch.inference_mode():
        expected = model([torch.from_numpy(image).permute(2, 0, 1).float() / 255])[0]
    engine = TorchEngine(model, info, score_floor=0.05)
    batch, geometry = Normalizer(info)([image])
    raw = engine.infer(batch, [g.resized_size for g in geometry])[0]
    frame = Frame("s", 0, 0.0, 0.0, image)
    got = finish_frame(frame, geometry[0], raw, Selection.uniform(0.05, 0.5, 100, info.class_names), info.class_names)
    assert len(expected["boxes"]) > 10  # random weights: plenty of low-score boxes to compare
    assert len(got) == len(expected["boxes"])
    # equal scores may come in either order: compare in a canonical order
    mine = canonical(got.boxes, got.scores, got.class_ids)
    theirs = canonical(expected["boxes"].numpy(), expected["scores"].numpy(), expected["labels"].numpy())
    np.testing.assert_allclose(got.boxes[mine], expected["boxes"].numpy()[theirs], atol=1e-3)
    np.testing.assert_allclose(got.scores[mine], expected["scores"].numpy()[theirs], atol=1e-5)
    assert got.class_ids[mine].tolist() == expected["labels"].numpy()[theirs].tolist()
    if masks:
        from pycocotools import mask as mask_utils

        reference_masks = expected["masks"][:, 0].numpy()[theirs] >= 0.5
        for rle, reference in zip([got.masks[i] for i in mine], reference_masks):
            mine = mask_utils.decode({"size": rle["size"], "counts": rle["counts"].encode()}).astype(bool)
            union = (mine | reference).sum()
            assert union == 0 or (mine & reference).sum() / union >= 0.99


def test_an_unknown_backend_names_the_backends():
    with pytest.raises(ModelError, match=r"model.engine = 'onnx': not a backend \(allowed: auto, torch, onnxruntime, tensorrt\)"):
        load_engine("arch:fasterrcnn_compact", backend="onnx")
