"""`torchvision:NAME` model specs: torchvision's COCO-trained R-CNNs as ready models.

Rules:
- The weights are torchvision's own (`torchvision.models.get_model_weights(NAME).COCO_V1`),
  read through the enum (`weights.get_state_dict`): downloaded once into the torch hub cache
  (`torch.hub.get_dir()/checkpoints/<basename of the URL>`, moved by `TORCH_HOME`) on a
  connected machine, found there offline. A local state dict (`--weights PATH`,
  `model.weights`) replaces the cache.
- The architecture is built by `engines.models` (the one list of architectures), with the
  weights' own number of classes; class names are the weights' `meta["categories"]`
  (91 entries: index = COCO category id, with `__background__` at 0 and `N/A` for the ids
  COCO leaves unused), so label ids in messages are COCO category ids.
- The input is our fixed, padded (height, width): torchvision's own resize rule (shorter
  side to `min_size`, longer side at most `max_size`, read from the built model) applied to
  a 16:9 frame and rounded up to a multiple of 32, unless the caller gives one.
- Every failure is one `ModelError` line saying which file, and what to do about it.
"""

from __future__ import annotations

import io
import logging
import math
import pickle
import sys
import zipfile
from contextlib import contextmanager, redirect_stdout
from pathlib import Path
from typing import Any, Iterator, Mapping

import torch
from torchvision.models import WeightsEnum, get_model_weights

from engines.base import ModelInfo
from engines.models import architecture, build_model
from pipeline.core.errors import ModelError

log = logging.getLogger("detstream")

PREFIX = "torchvision:"
# The R-CNNs torchvision publishes COCO weights for (built by engines/models.py).
MODELS = (
    "fasterrcnn_resnet50_fpn",
    "fasterrcnn_resnet50_fpn_v2",
    "fasterrcnn_mobilenet_v3_large_fpn",
    "fasterrcnn_mobilenet_v3_large_320_fpn",
    "maskrcnn_resnet50_fpn",
    "maskrcnn_resnet50_fpn_v2",
)
STRIDE = 32  # the FPN's coarsest stride: padded inputs are multiples of it
FRAME_ASPECT = (16, 9)  # (width, height) of the frames the default input size is made for
# candidates below this are not worth a look for a COCO model in a video stream;
# torchvision's own box_score_thresh (0.05) is for mAP, where low scores still count
SCORE_THRESHOLD = 0.5
# what the torch hub raises for a file it cannot read as weights
UNREADABLE = (RuntimeError, pickle.UnpicklingError, EOFError, zipfile.BadZipFile, ValueError, AttributeError, KeyError)


def is_torchvision_spec(spec: str) -> bool:
    return spec.startswith(PREFIX)


def model_name(spec: str) -> str:
    """NAME of `torchvision:NAME`, checked against the models with COCO weights."""
    name = spec.removeprefix(PREFIX)
    if name not in MODELS:
        raise ModelError(f"{spec}: not a torchvision COCO model (allowed: {', '.join(PREFIX + m for m in MODELS)})")
    return name


def coco_weights(name: str) -> WeightsEnum:
    """torchvision's COCO weights enum member of model `name`."""
    return get_model_weights(name).COCO_V1


def cache_file(weights: WeightsEnum) -> Path:
    """Where torchvision keeps (or will download) these weights."""
    return Path(torch.hub.get_dir()) / "checkpoints" / Path(weights.url).name


def weights_file(spec: str, weights_path: str | Path | None = None) -> Path:
    """The file the weights of `spec` come from: `weights_path`, else the hub cache."""
    if weights_path is not None:
        return Path(weights_path)
    return cache_file(coco_weights(model_name(spec)))


def padded_input_size(min_size: int, max_size: int) -> tuple[int, int]:
    """(height, width) torchvision would resize a 16:9 frame to, padded to the stride."""
    long, short = FRAME_ASPECT
    scale = min(min_size / short, max_size / long)
    return (math.ceil(short * scale / STRIDE) * STRIDE, math.ceil(long * scale / STRIDE) * STRIDE)


def default_input_size(model: torch.nn.Module) -> tuple[int, int]:
    """The padded input of a built torchvision R-CNN, from its own transform's sizes."""
    transform = model.transform
    return padded_input_size(int(transform.min_size[0]), int(transform.max_size))


def load_torchvision(
    spec: str, weights_path: str | Path | None = None, input_size: tuple[int, int] | None = None
) -> tuple[torch.nn.Module, ModelInfo]:
    """The COCO model `torchvision:NAME` with its weights (cache or `weights_path`) and metadata."""
    name = model_name(spec)
    weights = coco_weights(name)
    state = read_state_dict(Path(weights_path), spec) if weights_path is not None else cached_state_dict(name, weights)
    model = build_model(name, len(weights.meta["categories"]))
    _load(model, state, spec, weights_path if weights_path is not None else cache_file(weights))
    return model, _info(spec, model, input_size, str(weights_path) if weights_path is not None else weights.url)


def describe(spec: str) -> ModelInfo:
    """The metadata `load_torchvision(spec)` gives, without weights or memory: the model is
    built on the meta device only to read its input sizes."""
    weights = coco_weights(model_name(spec))
    with torch.device("meta"):
        skeleton = build_model(model_name(spec), len(weights.meta["categories"]))
    return _info(spec, skeleton, None, weights.url)


def _info(spec: str, model: torch.nn.Module, input_size: tuple[int, int] | None, source: str) -> ModelInfo:
    name = model_name(spec)
    return ModelInfo(
        name=spec,
        architecture=name,
        class_names=tuple(coco_weights(name).meta["categories"]),
        input_size=tuple(input_size) if input_size else default_input_size(model),
        score_threshold=SCORE_THRESHOLD,
        has_masks=architecture(name).has_masks,
        extra={"weights": source},
    )


def cached_state_dict(name: str, weights: WeightsEnum) -> Mapping[str, Any]:
    """The weights from the torch hub cache, downloaded there first when missing."""
    with hub_errors(name, weights):
        # a progress bar only for a person watching; it goes to stderr
        return weights.get_state_dict(progress=sys.stderr.isatty(), check_hash=True)


def coco_start(name: str, num_classes: int, seed: int = 0, **kwargs: Any) -> torch.nn.Module:
    """torchvision's COCO model `name` with fresh class heads for `num_classes`, built as
    torchvision builds it for fine-tuning: training's `weights: coco`."""
    weights = coco_weights(model_name(PREFIX + name))
    with hub_errors(name, weights):
        return build_model(name, num_classes, seed, weights=weights, **kwargs)


@contextmanager
def hub_errors(name: str, weights: WeightsEnum) -> Iterator[None]:
    """Read `weights` from the hub cache inside: its failures become one clear line."""
    file = cache_file(weights)
    cached = file.is_file()
    if not cached:
        size = weights.meta.get("_file_size")
        log.info("downloading %s weights%s from %s into %s", name, f" ({size:.0f} MB)" if size else "", weights.url, file.parent)
    try:
        # the hub announces downloads on stdout, where `--sink jsonl:-` writes messages;
        # the log line above says the same on stderr
        with redirect_stdout(io.StringIO()):
            yield
    except UNREADABLE as exc:
        if cached:
            raise ModelError(
                f"torchvision:{name}: cached weights {file} are not readable ({_first_line(exc)}): "
                f"delete the file to download it again, or fetch {weights.url} and put it there"
            ) from exc
        # a download whose content does not match the hash in its name
        raise ModelError(f"torchvision:{name}: the download of {weights.url} failed: {_first_line(exc)}") from exc
    except OSError as exc:  # URLError is an OSError: no network, no DNS, proxy refused
        raise ModelError(
            f"torchvision:{name}: weights file {file.name} is not in the torch hub cache {file.parent} "
            f"and cannot be downloaded ({_first_line(exc)}): fetch {weights.url} on a connected machine "
            f"and copy it into {file.parent}/ (TORCH_HOME moves the cache), or pass --weights PATH"
        ) from exc


def read_state_dict(path: Path, spec: str) -> Mapping[str, Any]:
    """A state dict saved with torch.save (plain, or torchvision's reference checkpoints
    `{"model": state_dict, ...}`)."""
    if not path.is_file():
        raise ModelError(f"{spec}: weights file not found: {path}")
    try:
        record = torch.load(path, map_location="cpu", weights_only=True)
    except (*UNREADABLE, OSError) as exc:
        raise ModelError(f"{spec}: {path} is not a readable PyTorch weights file: {_first_line(exc)}") from exc
    if isinstance(record, dict) and "format" in record and "state_dict" in record:
        raise ModelError(f"{spec}: {path} is a detstream model file: pass it as --model {path}")
    if isinstance(record, dict) and isinstance(record.get("model"), dict):
        record = record["model"]
    if not isinstance(record, dict) or not record or not all(isinstance(v, torch.Tensor) for v in record.values()):
        raise ModelError(f"{spec}: {path} is not a state dict (a mapping of parameter names to tensors)")
    return record


def _load(model: torch.nn.Module, state: Mapping[str, Any], spec: str, source: str | Path) -> None:
    """Load `state` strictly, or say in one line how it does not fit."""
    # torchvision's pretrained backbones use FrozenBatchNorm2d, which has no
    # num_batches_tracked; BatchNorm2d fills it in, so it is never a mismatch
    expected = {k: v.shape for k, v in model.state_dict().items() if not k.endswith("num_batches_tracked")}
    given = {k: v.shape for k, v in state.items() if not k.endswith("num_batches_tracked")}
    missing = sorted(set(expected) - set(given))
    unexpected = sorted(set(given) - set(expected))
    wrong = sorted(k for k in set(expected) & set(given) if expected[k] != given[k])
    if missing or unexpected or wrong:
        problems = []
        if missing:
            problems.append(f"{len(missing)} missing (e.g. {missing[0]})")
        if unexpected:
            problems.append(f"{len(unexpected)} unexpected (e.g. {unexpected[0]})")
        if wrong:
            k = wrong[0]
            problems.append(f"{len(wrong)} of another shape (e.g. {k}: {tuple(given[k])}, expected {tuple(expected[k])})")
        raise ModelError(f"{spec}: weights {source} do not fit the architecture: tensors " + ", ".join(problems))
    model.load_state_dict(state, strict=False)  # every key checked above; BatchNorm counters may be absent


def _first_line(exc: BaseException) -> str:
    """The gist of a foreign error: its first sentence (torch's can run to a page)."""
    text = (str(exc).strip() or type(exc).__name__).splitlines()[0]
    return text.split(". ")[0].rstrip(".") if len(text) > 120 else text
