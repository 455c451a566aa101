"""PyTorch engine of the models that classify given regions: R-CNN and Fast R-CNN.

They have no RPN: the proposals stage (stages/proposals.py) runs selective search on
each frame and hands the boxes to `infer`, so the search shows up as a stage time of its
own in `detstream profile`. The model's `detect(images, image_sizes, proposals)` takes
the pipeline's normalized, padded batch (no transform of its own) and returns one
`RawOutput` of candidates per image, like the two-stage engines, so postprocess is the same.
No ONNX export: these models exist to be compared, not deployed (PyTorch is their backend).
"""

from __future__ import annotations

import torch

from engines.base import ModelInfo
from pipeline.core.errors import ModelError
from pipeline.core.types import RawOutput


class RegionEngine:
    backend = "PyTorch"

    def __init__(self, model: torch.nn.Module, info: ModelInfo, device: str = "cpu", score_floor: float = 0.05) -> None:
        self.info = info
        self.device = torch.device(device)
        self.model = model.to(self.device).eval()
        self.model.score_floor = score_floor  # candidates below it are never produced

    @torch.inference_mode()
    def infer(
        self, images: torch.Tensor, image_sizes: list[tuple[int, int]], proposals: list[torch.Tensor] | None = None
    ) -> list[RawOutput]:
        if proposals is None or len(proposals) != len(images):
            raise ModelError(f"{self.info.name} ({self.info.architecture}) needs region proposals for each of its "
                             f"{len(images)} images: the proposals stage computes them")
        rois = [p.to(self.device, torch.float32) for p in proposals]
        return self.model.detect(images.to(self.device, non_blocking=True), image_sizes, rois)
