"""`torchvision:NAME` models: torchvision's COCO R-CNNs, weights through the torch hub cache.

This machine cannot download weights, so each test stages weights under the exact file
name torchvision expects, in a temporary TORCH_HOME. Random weights would detect nothing
decisive (every class scores ~1/91), so the staged weights are random but calibrated on a
frame: BatchNorm statistics from the frame, and class and mask logits spread around their
mean. Then one architecture of each kind of head (END_TO_END) runs end to end through the
pipeline on PyTorch, exports to a package, runs again on ONNX Runtime, and the two must
publish the same detections (same count and classes, boxes within 0.5 px, scores within
1e-3, mask IoU >= 0.99); class ids must be COCO category ids. The other architectures
repeat one of those heads on another backbone size: they load from the cache and detect on
PyTorch (an export of each ResNet-50 model costs a minute of the suite). The CLI tests use
the smallest model.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import pytest
import torch
from pycocotools import mask as mask_utils
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval
from torch import nn

from engines.base import ModelInfo
from engines.export import export_package
from engines.inputs import Normalizer
from engines.model_file import load_model
from engines.models import build_model
from engines.torch_backend import TorchEngine
from engines.torchvision_models import MODELS, cache_file, coco_weights, padded_input_size
from engines.loading import load_engine
from engines.training.evaluate import evaluate
from pipeline.batch.config import load_batch_settings
from pipeline.batch.job import BatchJob
from pipeline.batch.manifest import model_checksum
from pipeline.core.config import load_config
from pipeline.core.errors import ConfigError, ModelError
from pipeline.run.runner import run
from stages.sinks.per_file import coco_results
from support import DETSTREAM, render_blobs, write_video
from synth.dataset import write_dataset

INPUT_SIZE = (192, 320)  # small: the default 768x1344 would take seconds per frame
FRAMES = 2
WIDTH, HEIGHT = 320, 180
THRESHOLD = 0.5
BOX_TOLERANCE_PX = 0.5
SCORE_TOLERANCE = 1e-3
MIN_MASK_IOU = 0.99
SMALL = "fasterrcnn_mobilenet_v3_large_320_fpn"
# one of each head: MobileNet + two-layer MLP box head, ResNet-50 + conv box head (v2),
# ResNet-50 + MLP box head + mask head
END_TO_END = (SMALL, "fasterrcnn_resnet50_fpn_v2", "maskrcnn_resnet50_fpn")

# COCO 2017's 80 categories with their ids, written out here independently of torchvision
COCO_IDS = [*range(1, 12), *range(13, 26), 27, 28, *range(31, 45), *range(46, 66), 67, 70, *range(72, 83), *range(84, 91)]
COCO_NAMES = (
    "person,bicycle,car,motorcycle,airplane,bus,train,truck,boat,traffic light,fire hydrant,stop sign,"
    "parking meter,bench,bird,cat,dog,horse,sheep,cow,elephant,bear,zebra,giraffe,backpack,umbrella,handbag,"
    "tie,suitcase,frisbee,skis,snowboard,sports ball,kite,baseball bat,baseball glove,skateboard,surfboard,"
    "tennis racket,bottle,wine glass,cup,fork,knife,spoon,bowl,banana,apple,sandwich,orange,broccoli,carrot,"
    "hot dog,pizza,donut,cake,chair,couch,potted plant,bed,dining table,toilet,tv,laptop,mouse,remote,"
    "keyboard,cell phone,microwave,oven,toaster,sink,refrigerator,book,clock,vase,scissors,teddy bear,"
    "hair drier,toothbrush"
).split(",")
COCO_CATEGORIES = dict(zip(COCO_IDS, COCO_NAMES))


def test_coco_table_is_complete():
    assert len(COCO_CATEGORIES) == 80


def calibrated_weights(name: str, image: np.ndarray, seed: int = 5) -> dict[str, torch.Tensor]:
    """Random weights of `name` that detect things decisively on frames like `image`."""
    model = build_model(name, 91, seed=seed)
    info = ModelInfo("calibration", name, tuple(coco_weights(name).meta["categories"]), INPUT_SIZE)
    batch, geometry = Normalizer(info)([image])
    sizes = [g.resized_size for g in geometry]
    engine = TorchEngine(model, info, score_floor=0.0)  # info without masks: the box part only
    # BatchNorm statistics of this frame, so that activations neither vanish nor explode
    for norm in (m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)):
        norm.reset_running_stats()
        norm.momentum = None
        norm.train()
    seen: dict[str, torch.Tensor] = {}
    heads = model.roi_heads
    hook = heads.box_predictor.cls_score.register_forward_pre_hook(lambda _, args: seen.setdefault("box", args[0]))
    outputs = engine.infer(batch, sizes)
    hook.remove()
    if heads.mask_predictor is not None:
        with torch.no_grad():
            pooled = heads.mask_roi_pool(model.backbone(batch), [outputs[0].boxes[:32]], sizes)
            predictor = heads.mask_predictor
            pixels = predictor.relu(predictor.conv5_mask(heads.mask_head(pooled)))
            seen["mask"] = pixels.transpose(0, 1).flatten(1).T  # one row per mask pixel
    model.eval()
    generator = torch.Generator().manual_seed(seed)
    layers = {"box": (heads.box_predictor.cls_score, 1.5)}  # logit spread: a few classes stand out
    if "mask" in seen:
        layers["mask"] = (heads.mask_predictor.mask_fcn_logits, 4.0)  # masks far from the 0.5 cut
    with torch.no_grad():
        for key, (layer, spread) in layers.items():
            features = seen[key]
            mean = features.mean(0)
            scale = (features - mean).pow(2).mean().sqrt()
            weight = torch.randn(layer.weight.shape, generator=generator) * spread / (scale * features.shape[1] ** 0.5)
            layer.weight.copy_(weight)
            layer.bias.copy_(-weight.flatten(1) @ mean)  # logits centred on zero
    return model.state_dict()


def stage(name: str, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(calibrated_weights(name, render_blobs(0, WIDTH, HEIGHT)), path)
    return path


@pytest.fixture(scope="module")
def torch_home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A TORCH_HOME of our own, for this process and the CLI subprocesses."""
    home = tmp_path_factory.mktemp("torch-home")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("TORCH_HOME", str(home))
        patch.setattr(torch.hub, "_hub_dir", None)  # set_dir below is undone afterwards
        torch.hub.set_dir(str(home / "hub"))
        yield home


@pytest.fixture(scope="module")
def video(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_video(tmp_path_factory.mktemp("tv-video") / "blobs.mp4", FRAMES, WIDTH, HEIGHT)


def run_pipeline(model: str, engine: str, video: Path, out: Path) -> list[dict[str, Any]]:
    config = load_config(
        None,
        {
            "sources": [str(video)],
            "sinks": [f"jsonl:{out}"],
            "model.path": model,
            "model.engine": engine,
            "model.input_size": list(INPUT_SIZE),
            "model.score_threshold": THRESHOLD,
            "batch.max_batch": FRAMES,
            "metrics.log_every_s": None,
        },
    )
    summary = run(config)
    assert summary.exit_code == 0, (summary.stage_errors, summary.source_errors)
    return [json.loads(line) for line in out.read_text().splitlines()]


def run_batch(package: str, video: Path, out: Path) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """`detstream batch VIDEO --format coco` as the command runs it, on `package`."""
    settings = load_batch_settings(None, {"model.path": package, "format": "coco", "model.score_threshold": THRESHOLD})
    report = BatchJob([str(video)], out, settings, lambda: load_engine(package, score_threshold=THRESHOLD), "test").run()
    return report.to_json("test", settings.fingerprint()), json.loads((out / f"{video.name}.coco.json").read_text())


def dataset(folder: Path) -> Path:
    """Two synthetic images (person, car, bicycle, dog: all COCO classes) for `eval`."""
    write_dataset(folder, seed=3, count=2, width=WIDTH, height=HEIGHT)
    return folder / "annotations.json"


@dataclass
class Runs:
    name: str
    categories: tuple[str, ...]
    torch: list[dict[str, Any]]  # messages of the PyTorch run, one per frame
    onnxruntime: list[dict[str, Any]]
    package: dict[str, Any]  # package.json
    batch: dict[str, Any]  # `detstream batch`'s report of the video, on the package
    batch_results: list[dict[str, Any]]  # its COCO results file
    evaluation: dict[str, Any]  # `detstream eval`'s report on a two-image dataset, on the package


def test_end_to_end_covers_every_kind_of_head():
    assert set(END_TO_END) <= set(MODELS)
    assert {name.split("_")[1] for name in MODELS} == {name.split("_")[1] for name in END_TO_END}  # backbones
    assert {name.endswith("_v2") for name in MODELS} == {name.endswith("_v2") for name in END_TO_END}
    assert {name.startswith("mask") for name in MODELS} == {name.startswith("mask") for name in END_TO_END}


@pytest.mark.parametrize("name", [m for m in MODELS if m not in END_TO_END])
def test_the_other_architectures_load_from_the_cache_and_detect(name: str, torch_home: Path):
    weights = coco_weights(name)
    staged = stage(name, cache_file(weights))
    try:
        engine = load_engine(f"torchvision:{name}", backend="torch", input_size=INPUT_SIZE, score_threshold=THRESHOLD)
        batch, geometry = Normalizer(engine.info)([render_blobs(0, WIDTH, HEIGHT)])
        [output] = engine.infer(batch, [g.resized_size for g in geometry])
    finally:
        staged.unlink()
    assert engine.info.class_names == tuple(weights.meta["categories"])
    assert (output.scores >= THRESHOLD).sum() > 0  # calibrated weights: decisive detections
    assert (output.mask_logits is not None) == name.startswith("mask")


@pytest.fixture(scope="module", params=END_TO_END)
def runs(request, torch_home: Path, video: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Runs]:
    """One architecture, from the hub cache: a PyTorch run, export, an ONNX Runtime run."""
    name = request.param
    weights = coco_weights(name)
    staged = stage(name, cache_file(weights))
    assert staged.parent == torch_home / "hub" / "checkpoints"
    root = tmp_path_factory.mktemp(name)
    reference = run_pipeline(f"torchvision:{name}", "torch", video, root / "torch.jsonl")
    package = export_package(f"torchvision:{name}", root / "package", max_batch=FRAMES, input_size=INPUT_SIZE).root
    ours = run_pipeline(str(package), "onnxruntime", video, root / "onnxruntime.jsonl")
    batch, batch_results = run_batch(str(package), video, root / "batch")
    evaluation = evaluate(load_engine(str(package), score_threshold=0.05), dataset(root / "data"), progress=False)
    yield Runs(name, tuple(weights.meta["categories"]), reference, ours, json.loads((package / "package.json").read_text()),
               batch, batch_results, evaluation)
    staged.unlink()
    shutil.rmtree(root)  # hundreds of MB for the ResNet-50 models


def test_runs_end_to_end_with_coco_class_names(runs: Runs):
    assert len(runs.torch) == FRAMES
    assert sum(len(m["detections"]) for m in runs.torch) >= 5  # something to compare
    for message in runs.torch:
        assert message["model"] == f"torchvision:{runs.name}"
        for det in message["detections"]:
            assert det["score"] >= THRESHOLD
            # label ids index the weights' own category list
            assert det["label"] == runs.categories[det["class_id"]]
            assert ("mask" in det) == runs.name.startswith("maskrcnn")


def test_onnxruntime_package_matches_pytorch(runs: Runs):
    info = runs.package["info"]
    assert info["name"] == f"torchvision:{runs.name}" and info["architecture"] == runs.name
    assert tuple(info["class_names"]) == runs.categories and len(runs.categories) == 91
    assert tuple(info["input_size"]) == INPUT_SIZE
    for ours, reference in zip(runs.onnxruntime, runs.torch, strict=True):
        # random weights give near-equal scores of different classes, whose order two
        # backends may swap: compare per class, best first
        a, b = (sorted(m["detections"], key=lambda d: (d["class_id"], -d["score"])) for m in (ours, reference))
        assert len(a) == len(b), f"frame {ours['seq']}: {len(a)} vs {len(b)} detections"
        if not a:
            continue
        assert [d["class_id"] for d in a] == [d["class_id"] for d in b]
        assert np.abs(np.array([d["box"] for d in a]) - [d["box"] for d in b]).max() <= BOX_TOLERANCE_PX
        assert np.abs(np.array([d["score"] for d in a]) - [d["score"] for d in b]).max() <= SCORE_TOLERANCE
        if "mask" in a[0]:
            iou = mask_utils.iou([d["mask"] for d in a], [d["mask"] for d in b], [0] * len(b)).diagonal()
            assert iou.min() >= MIN_MASK_IOU, f"frame {ours['seq']}: mask IoU {iou.min():.4f}"


def ground_truth(image_ids: list[int]) -> COCO:
    """COCO-style ground truth with COCO's real categories and a box per image."""
    coco = COCO()
    coco.dataset = {
        "images": [{"id": i, "width": WIDTH, "height": HEIGHT, "file_name": f"{i}.jpg"} for i in image_ids],
        "categories": [{"id": k, "name": v} for k, v in COCO_CATEGORIES.items()],
        "annotations": [
            {"id": n + 1, "image_id": i, "category_id": 1, "bbox": [10, 10, 50, 80], "area": 4000, "iscrowd": 0}
            for n, i in enumerate(image_ids)
        ],
    }
    coco.createIndex()
    return coco


def test_batch_and_eval_run_it(runs: Runs):
    assert runs.batch["counts"]["ok"] == 1 and runs.batch["frames"] == FRAMES, runs.batch
    assert {r["image_id"] for r in runs.batch_results} <= set(range(FRAMES))
    assert {r["category_id"] for r in runs.batch_results} <= set(COCO_CATEGORIES)
    detected = sum(len(m["detections"]) for m in runs.onnxruntime)
    assert len(runs.batch_results) == detected  # the same package, the same frames, the same threshold
    assert runs.evaluation["images"] == 2 and "AP" in runs.evaluation["bbox"]  # random weights: AP means nothing
    assert ("segm" in runs.evaluation) == runs.package["info"]["has_masks"]


def test_class_ids_are_coco_category_ids(runs: Runs):
    """`batch --format coco` results: category_id is the class id, and it is COCO's id of
    the detection's class, so the results score against real COCO annotations."""
    results, labels = [], []
    for message in runs.torch:
        results += coco_results(message)
        labels += [d["label"] for d in message["detections"]]
    named = [(r, label) for r, label in zip(results, labels, strict=True) if label != "N/A"]
    assert named
    for record, label in named:
        assert COCO_CATEGORIES[record["category_id"]] == label
    truth = ground_truth([m["seq"] for m in runs.torch])
    evaluation = COCOeval(truth, truth.loadRes([r for r, _ in named]), "bbox")
    evaluation.evaluate()
    evaluation.accumulate()
    assert evaluation.eval["precision"].shape[2] == 80


def test_unused_coco_ids_are_never_emitted(runs: Runs):
    labels = {d["label"] for m in runs.torch for d in m["detections"]}
    assert "N/A" not in labels


# -- loading ----------------------------------------------------------------------------


def test_default_input_size_follows_torchvision_resize_rule():
    assert padded_input_size(800, 1333) == (768, 1344)  # 16:9 -> 750 x 1333, padded
    assert padded_input_size(320, 640) == (320, 576)  # 16:9 -> 320 x 569, padded


@pytest.fixture(scope="module")
def small_weights(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Weights of the smallest model in a file of its own (`--weights PATH`)."""
    return stage(SMALL, tmp_path_factory.mktemp("weights") / "mobilenet320.pth")


def test_weights_file_and_default_input_size(small_weights: Path, torch_home: Path):
    model, info = load_model(f"torchvision:{SMALL}", weights=str(small_weights))
    assert info.input_size == (320, 576)  # min 320 / max 640, from the model's own transform
    assert info.class_names[1] == "person" and info.class_names[12] == "N/A"
    saved = torch.load(small_weights, weights_only=True)
    assert torch.equal(model.state_dict()["roi_heads.box_predictor.cls_score.weight"], saved["roi_heads.box_predictor.cls_score.weight"])


def test_bad_weights_files_are_one_clear_line(small_weights: Path, tmp_path: Path, torch_home: Path):
    spec = f"torchvision:{SMALL}"
    with pytest.raises(ModelError, match="weights file not found"):
        load_model(spec, weights=str(tmp_path / "missing.pth"))
    (tmp_path / "text.pth").write_text("not weights")
    with pytest.raises(ModelError, match="is not a readable PyTorch weights file"):
        load_model(spec, weights=str(tmp_path / "text.pth"))
    torch.save([1, 2, 3], tmp_path / "list.pth")
    with pytest.raises(ModelError, match="is not a state dict"):
        load_model(spec, weights=str(tmp_path / "list.pth"))
    with pytest.raises(ModelError, match=r"do not fit the architecture: tensors \d+ missing .*\d+ unexpected"):
        load_model("torchvision:fasterrcnn_resnet50_fpn", weights=str(small_weights))
    with pytest.raises(ModelError, match="not a torchvision COCO model"):
        load_model("torchvision:fasterrcnn_compact")
    with pytest.raises(ModelError, match="is for torchvision:NAME models"):
        load_model("arch:fasterrcnn_compact", weights=str(small_weights))


def test_input_size_setting():
    assert load_config(None, {"model.input_size": "192x320"}).model.input_size == (192, 320)
    assert load_config(None, {"model.input_size": [384, 640]}).model.input_size == (384, 640)
    with pytest.raises(ConfigError, match="multiples of 32, got 200x320"):
        load_config(None, {"model.input_size": "200x320"})


def test_a_package_refuses_weights_and_another_input_size(tmp_path: Path, small_weights: Path):
    package = str(export_package("arch:fasterrcnn_compact", tmp_path / "package", max_batch=1).root)
    with pytest.raises(ModelError, match=r"was exported for \[320, 576\]"):
        load_engine(package, input_size=(192, 320))
    with pytest.raises(ModelError, match="holds its own weights"):
        load_engine(package, weights=str(small_weights))
    assert load_engine(package, input_size=(320, 576)).info.input_size == (320, 576)


def test_batch_model_checksum_follows_the_weights_file(torch_home: Path, small_weights: Path):
    spec = f"torchvision:{SMALL}"
    file_name = Path(coco_weights(SMALL).url).name
    assert model_checksum(spec) == f"{spec}:{file_name}"  # not downloaded yet: its content-named file
    digest = model_checksum(spec, str(small_weights))
    assert len(digest) == 64 and digest != model_checksum(spec, __file__)


# -- the CLI -----------------------------------------------------------------------------


def cli_env(torch_home: Path) -> dict[str, str]:
    # downloads go to a closed port: the tests are offline also on a connected machine
    proxy = "http://127.0.0.1:9"
    return {"TORCH_HOME": str(torch_home), "https_proxy": proxy, "HTTPS_PROXY": proxy, "no_proxy": "", "NO_PROXY": ""}


def detstream(*args: str, torch_home: Path, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    """`detstream ARGS` in a subprocess with its own TORCH_HOME."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1", **cli_env(torch_home)}
    return subprocess.run([*DETSTREAM, *args], capture_output=True, text=True, timeout=timeout, env=env)


def test_cli_offline_without_the_file_says_which_file_where_and_from_where(tmp_path: Path, video: Path):
    empty_home = tmp_path / "empty-home"
    done = detstream("run", "--model", f"torchvision:{SMALL}", "--source", str(video), "--sink", "jsonl:-", torch_home=empty_home)
    assert done.returncode == 2, done.stderr
    errors = [line for line in done.stderr.splitlines() if "ERROR" in line]
    assert len(errors) == 1, done.stderr
    weights = coco_weights(SMALL)
    file_name = Path(weights.url).name
    assert file_name in errors[0] and str(empty_home / "hub" / "checkpoints") in errors[0] and weights.url in errors[0]
    assert "Traceback" not in done.stderr


def test_cli_corrupt_cached_file(tmp_path: Path, video: Path):
    home = tmp_path / "home"
    cached = home / "hub" / "checkpoints" / Path(coco_weights(SMALL).url).name
    cached.parent.mkdir(parents=True)
    cached.write_bytes(b"PK\x03\x04 half a download")
    done = detstream("run", "--model", f"torchvision:{SMALL}", "--source", str(video), "--sink", "jsonl:-", torch_home=home)
    assert done.returncode == 2, done.stderr
    errors = [line for line in done.stderr.splitlines() if "ERROR" in line]
    assert len(errors) == 1 and str(cached) in errors[0] and "delete the file" in errors[0], done.stderr


def test_cli_run_with_weights_file(small_weights: Path, tmp_path: Path, video: Path):
    out = tmp_path / "out.jsonl"
    done = detstream(
        "run", "--model", f"torchvision:{SMALL}", "--weights", str(small_weights), "--input-size", "192x320",
        "--engine", "torch", "--score-threshold", str(THRESHOLD), "--source", str(video), "--sink", f"jsonl:{out}",
        torch_home=tmp_path / "empty-home",  # the cache is not used: it is empty
    )
    assert done.returncode == 0, done.stderr
    messages = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(messages) == FRAMES
    assert {m["model"] for m in messages} == {f"torchvision:{SMALL}"}
    assert sum(len(m["detections"]) for m in messages) > 0


def test_cli_batch_coco_eval_and_export_from_the_cache(torch_home: Path, tmp_path: Path, video: Path):
    staged = stage(SMALL, cache_file(coco_weights(SMALL)))
    try:
        spec = f"torchvision:{SMALL}"
        out = tmp_path / "batch"
        done = detstream(
            "batch", str(video), "--out", str(out), "--model", spec, "--input-size", "192x320", "--engine", "torch",
            "--format", "coco", "--score-threshold", str(THRESHOLD), torch_home=torch_home,
        )
        assert done.returncode == 0, done.stderr
        results = json.loads((out / "blobs.mp4.coco.json").read_text())
        assert results and {r["image_id"] for r in results} <= set(range(FRAMES))
        truth = ground_truth(list(range(FRAMES)))
        truth.loadRes([r for r in results if r["category_id"] in COCO_CATEGORIES])  # loads against real ids

        data = tmp_path / "data"
        write_dataset(data, seed=3, count=2, width=WIDTH, height=HEIGHT)  # person, car, bicycle, dog
        done = detstream(
            "eval", "--model", spec, "--input-size", "192x320", "--engine", "torch", "--data",
            str(data / "annotations.json"), "--out", str(tmp_path / "eval.json"), torch_home=torch_home,
        )
        assert done.returncode == 0, done.stderr
        report = json.loads((tmp_path / "eval.json").read_text())
        assert report["model"] == spec and report["images"] == 2
        assert "AP" in report["bbox"]  # random weights: the score itself means nothing
        assert any("76 model classes are not in the dataset" in note for note in report["notes"])

        done = detstream(
            "export", "--model", spec, "--input-size", "192x320", "--out", str(tmp_path / "package"), torch_home=torch_home
        )
        assert done.returncode == 0, done.stderr
        meta = json.loads((tmp_path / "package" / "package.json").read_text())
        assert meta["info"]["input_size"] == list(INPUT_SIZE) and len(meta["info"]["class_names"]) == 91
    finally:
        staged.unlink()


# -- training from COCO ------------------------------------------------------------------


@pytest.mark.parametrize("start", [{"weights": "coco"}, {"init_from": f"torchvision:{SMALL}"}], ids=["weights", "init_from"])
def test_training_starts_from_the_cached_coco_weights(start: dict, torch_home: Path, small_weights: Path, tmp_path: Path):
    from engines.training.config import TrainConfig
    from engines.training.train import Trainer

    cached = cache_file(coco_weights(SMALL))
    cached.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(small_weights, cached)
    try:
        write_dataset(tmp_path / "data", seed=11, count=2, width=192, height=108)
        settings = {"architecture": SMALL, "data": {"train": str(tmp_path / "data/annotations.json")},
                    "input_size": [96, 160], "workers": 0, "out": str(tmp_path / "run"), **start}
        model = Trainer(TrainConfig.model_validate(settings)).model.state_dict()
    finally:
        cached.unlink()
    coco = torch.load(small_weights, weights_only=True)
    # trained parts carry over; the class heads are new, for the data's 4 classes + background
    assert torch.equal(model["backbone.body.0.0.weight"], coco["backbone.body.0.0.weight"])
    assert torch.equal(model["rpn.head.cls_logits.weight"], coco["rpn.head.cls_logits.weight"])
    assert model["roi_heads.box_predictor.cls_score.weight"].shape[0] == 5


def test_training_init_from_another_torchvision_model_is_refused(tmp_path: Path):
    from engines.training.config import TrainConfig
    from engines.training.train import Trainer
    from pipeline.core.errors import TrainingError

    write_dataset(tmp_path / "data", seed=11, count=2, width=192, height=108)
    settings = {"architecture": "fasterrcnn_compact", "data": {"train": str(tmp_path / "data/annotations.json")},
                "workers": 0, "out": str(tmp_path / "run"), "init_from": f"torchvision:{SMALL}"}
    with pytest.raises(TrainingError, match=f"set architecture: {SMALL}, or weights: coco"):
        Trainer(TrainConfig.model_validate(settings))
