"""Synthetic camera scenes with exact COCO ground truth (person, car, bicycle, dog).

- `synth.scene.Scene(rng, width, height, objects=..., duration=...).render(t)`:
  the rendering core, an RGB frame and its visible `Instance`s at time t;
- `synth.video.iter_frames(...)` / `synth.video.write_video(...)`: clips;
- `synth.dataset.write_dataset(...)`: still-image COCO datasets;
- `synth.cli.add_parser(subparsers)`: the `detstream synth` command.

The ground-truth rules are in the `synth.scene` docstring.
"""

from synth.categories import CATEGORIES
from synth.scene import GENERATOR_VERSION, Instance, Scene

__all__ = ["CATEGORIES", "GENERATOR_VERSION", "Instance", "Scene"]
