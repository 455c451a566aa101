"""Synthetic camera scenes with exact COCO ground truth (person, car, bicycle, dog).

- `synth.scene.Scene(rng, width, height, objects=..., duration=...).render(t)`:
  the rendering core, an RGB frame and its visible `Instance`s at time t;
- `synth.video.iter_frames(...)` / `synth.video.write_video(...)`: clips;
- `synth.dataset.write_dataset(...)`: still-image COCO datasets;
- `synth.cli.add_parser(subparsers)`: the `detstream synth` command.

The ground-truth rules are in the `synth.scene` docstring.

Import from those modules: this file imports nothing, so that `synth.cli` (imported by
`detstream` for its parser) does not load OpenCV and NumPy with the package.
"""
