"""PyTorch engine of one-stage detectors (RetinaNet, engines/one_stage.py).

The model's learned parts (backbone, head) run on the pipeline's normalized, padded batch:
the preprocess stage already letterboxed and normalized it, so the model's own transform
is never used. Anchors and decoding are torchvision's own (`anchor_generator`,
`postprocess_detections` with its score threshold set to the engine's score floor), so the
boxes are exactly the model's; its per-class NMS is cheap and leaves postprocess (the
pipeline's class-wise NMS and thresholds) the same as for the other engines. Boxes are in
input pixels, clipped to each image's unpadded size. Candidates of the background column
(label 0; torchvision's RetinaNet counts it among its classes) are dropped.
No ONNX export: PyTorch is the backend of this reference model.
"""

from __future__ import annotations

import torch
from torchvision.models.detection.image_list import ImageList
from torchvision.models.detection.retinanet import RetinaNet

from engines.base import ModelInfo
from pipeline.core.types import RawOutput


class OneStageEngine:
    backend = "PyTorch"

    def __init__(self, model: RetinaNet, info: ModelInfo, device: str = "cpu", score_floor: float = 0.05) -> None:
        self.info = info
        self.device = torch.device(device)
        self.model = model.to(self.device).eval()
        self.model.score_thresh = score_floor  # candidates below it are never produced

    @torch.inference_mode()
    def infer(
        self, images: torch.Tensor, image_sizes: list[tuple[int, int]], proposals: list[torch.Tensor] | None = None
    ) -> list[RawOutput]:
        images = images.to(self.device, non_blocking=True)
        features = list(self.model.backbone(images).values())
        head = self.model.head(features)
        anchors = self.model.anchor_generator(ImageList(images, image_sizes), features)
        # postprocess_detections takes outputs and anchors split per level, as RetinaNet.forward splits them
        per_level = [f.shape[-2] * f.shape[-1] * self.model.anchor_generator.num_anchors_per_location()[i]
                     for i, f in enumerate(features)]
        split = {name: list(value.split(per_level, dim=1)) for name, value in head.items()}
        split_anchors = [list(a.split(per_level)) for a in anchors]
        detections = self.model.postprocess_detections(split, split_anchors, image_sizes)
        outputs = []
        for found in detections:
            keep = found["labels"] > 0
            outputs.append(RawOutput(found["boxes"][keep], found["scores"][keep], found["labels"][keep]))
        return outputs
