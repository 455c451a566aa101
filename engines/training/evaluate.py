"""COCO mAP of an engine, computed through the pipeline's own pre- and postprocessing.

Images go through `Normalizer` -> `engine.infer` -> `finish_frame`, exactly as in
`detstream run`, so the numbers describe what the pipeline delivers. pycocotools is the
referee: this module only converts detections to COCO results and reads its stats.
VOC 2007 11-point AP is read from the same COCOeval run (its interpolated precision), so
there is one matching of detections to ground truth, pycocotools'.
"""

from __future__ import annotations

import contextlib
import copy
import io
import json
import time
from pathlib import Path
from typing import Any

from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table
import torch

from engines.base import PLACEHOLDER_CLASSES, Engine
from engines.models import takes_proposals
from engines.selective_search import SelectiveSearch
from engines.training.data import CocoDataset
from pipeline.core.errors import DatasetError
from pipeline.core.types import Detections, Frame
from engines.outputs import Selection, finish_frame
from engines.inputs import Normalizer

# the first nine of COCOeval.stats, in its order
METRICS = ("AP", "AP50", "AP75", "APs", "APm", "APl", "AR1", "AR10", "AR100")
NMS_IOU = 0.5  # the pipeline's default class-wise NMS
VOC07 = "VOC07"  # the key of the VOC 2007 11-point mAP@0.5 next to METRICS
VOC07_RECALLS = tuple(i / 10 for i in range(11))  # recall 0, 0.1, ..., 1.0


def evaluate(
    engine: Engine,
    dataset: CocoDataset | Path,
    batch_size: int = 2,
    score_threshold: float = 0.05,
    top_k: int = 100,
    progress: bool = True,
    quiet: bool = True,
    limit: int | None = None,
) -> dict[str, Any]:
    """bbox (and segm, for mask engines) COCO metrics of `engine` on `dataset`.

    `limit` evaluates the first N images only (quick checks during training).
    Metrics that pycocotools reports as -1 (no ground truth in that size range) are None.
    `quiet=False` lets pycocotools print its own summary.
    """
    if batch_size < 1:
        raise ValueError(f"evaluate: batch_size must be at least 1, got {batch_size}")
    if not isinstance(dataset, CocoDataset):
        dataset = CocoDataset(Path(dataset))
    class_names = engine.info.class_names
    category_of = category_map(class_names, dataset)
    normalize = Normalizer(engine.info)
    selection = Selection.uniform(score_threshold, NMS_IOU, top_k, class_names)
    boxes: list[dict] = []
    masks: list[dict] = []
    search = SelectiveSearch.of_model(engine.info.extra) if takes_proposals(engine.info.architecture) else None
    proposal_seconds = 0.0
    start = time.perf_counter()
    count = len(dataset) if limit is None else min(limit, len(dataset))
    with _progress(progress) as bar:
        task = bar.add_task("evaluating", total=count)
        for first in range(0, count, batch_size):
            indices = range(first, min(first + batch_size, count))
            images = [dataset.read_image(i) for i in indices]
            batch, geometry = normalize(images)
            sizes = [g.resized_size for g in geometry]
            if search is None:
                outputs = engine.infer(batch, sizes)
            else:  # as the proposals stage of a run does it (stages/proposals.py)
                searching = time.perf_counter()
                proposals = [geo.to_input(torch.from_numpy(search(image))) for image, geo in zip(images, geometry)]
                proposal_seconds += time.perf_counter() - searching
                outputs = engine.infer(batch, sizes, proposals)
            for index, image, geo, raw in zip(indices, images, geometry, outputs):
                record = dataset.records[index]
                frame = Frame(source=record.file_name, seq=index, pts=0.0, capture_ts=0.0, image=image)
                detections = finish_frame(frame, geo, raw, selection, class_names)
                boxes += bbox_results(detections, record.id, category_of)
                if detections.masks is not None:
                    masks += segm_results(detections, record.id, category_of)
            bar.advance(task, len(indices))
    looped = time.perf_counter() - start
    result: dict[str, Any] = {
        "model": engine.info.name,
        "data": str(dataset.path),
        "images": count,
        "detections": len(boxes),
        "notes": [],
    }
    unscored = [n for i, n in enumerate(class_names) if i > 0 and i not in category_of and n not in PLACEHOLDER_CLASSES]
    if unscored:
        result["notes"].append(f"{len(unscored)} model classes are not in the dataset; their detections are not scored")
    ground_truth = _ground_truth(dataset, quiet)
    image_ids = [dataset.records[i].id for i in range(count)]
    result["bbox"] = _score(ground_truth, boxes, "bbox", quiet, result["notes"], image_ids)
    if engine.info.has_masks:
        if dataset.annotations.has_segmentation:
            result["segm"] = _score(ground_truth, masks, "segm", quiet, result["notes"], image_ids)
        else:
            result["notes"].append("segm not evaluated: some annotations have no segmentation")
    result["seconds"] = round(time.perf_counter() - start, 3)
    # per image: reading, preprocessing, proposals, the engine and selection, as a run does them (scoring excluded)
    result["seconds_per_image"] = round(looped / max(1, count), 4)
    if search is not None:
        result["proposal_seconds"] = round(proposal_seconds, 3)  # selective search's share of `seconds`
    return result


def category_map(class_names: tuple[str, ...], dataset: CocoDataset) -> dict[int, int]:
    """Model label id -> COCO category id, matched by name (index 0 is background).

    Every dataset category must be a model class; a model may know more (a COCO model on
    a dataset of a few COCO classes): labels missing from the map are not scored.
    """
    model = [name for name in class_names[1:] if name not in PLACEHOLDER_CLASSES]
    data = dict(zip(dataset.class_names[1:], dataset.category_ids[1:]))
    if len(set(model)) != len(model) or not set(data) <= set(model):
        missing = sorted(set(data) - set(model))
        extra = sorted(set(model) - set(data))
        raise DatasetError(
            dataset.path,
            [
                f"model classes {model} do not match dataset categories {list(data)} "
                f"(not in model: {missing}, not in dataset: {extra})"
            ],
        )
    return {label: data[name] for label, name in enumerate(class_names) if label > 0 and name in data}


def bbox_results(detections: Detections, image_id: int, category_of: dict[int, int]) -> list[dict]:
    return [
        {
            "image_id": image_id,
            "category_id": category_of[int(label)],
            "bbox": [float(x1), float(y1), float(x2 - x1), float(y2 - y1)],
            "score": float(score),
        }
        for (x1, y1, x2, y2), score, label in zip(detections.boxes, detections.scores, detections.class_ids)
        if int(label) in category_of
    ]


def segm_results(detections: Detections, image_id: int, category_of: dict[int, int]) -> list[dict]:
    # no "bbox" key: pycocotools' loadRes would then take the box area as the mask's
    return [
        {"image_id": image_id, "category_id": category_of[int(label)], "segmentation": rle, "score": float(score)}
        for rle, score, label in zip(detections.masks or [], detections.scores, detections.class_ids)
        if int(label) in category_of
    ]


def _ground_truth(dataset: CocoDataset, quiet: bool) -> COCO:
    with _silenced(quiet):
        coco = COCO()
        # COCOeval rewrites ground-truth records in place (polygons to RLE, ignore flags)
        coco.dataset = copy.deepcopy(dataset.annotations.coco)
        coco.createIndex()
    return coco


def _score(
    ground_truth: COCO, results: list[dict], iou_type: str, quiet: bool, notes: list[str], image_ids: list[int]
) -> dict:
    if not results:
        # loadRes indexes results[0]: with no detections every metric is 0 by definition
        notes.append(f"{iou_type}: no detections at all, all metrics set to 0")
        return dict.fromkeys((*METRICS, VOC07), 0.0)
    with _silenced(quiet):
        # loadRes writes into the result dicts (ids, areas): hand it copies
        evaluation = COCOeval(ground_truth, ground_truth.loadRes(copy.deepcopy(results)), iou_type)
        evaluation.params.imgIds = image_ids  # the images that were run, not the whole file
        evaluation.evaluate()
        evaluation.accumulate()
        evaluation.summarize()
    stats = [float(value) for value in evaluation.stats]
    metrics: dict[str, Any] = {name: (None if value < 0 else round(value, 4)) for name, value in zip(METRICS, stats)}
    metrics["AP_per_class"] = _per_class_ap(evaluation)
    metrics[VOC07], metrics["VOC07_per_class"] = voc07_ap(evaluation)
    return metrics


def _per_class_ap(evaluation: COCOeval) -> dict[str, float | None]:
    """AP@[.5:.95] of each category, as COCOeval's summary averages it (all areas, 100 dets):
    the mean tells little when one class is much harder than the others."""
    # precision: [IoU thresholds, recall points, categories, area ranges, max-dets settings]
    precision = evaluation.eval["precision"][:, :, :, 0, -1]
    result: dict[str, float | None] = {}
    for k, category_id in enumerate(evaluation.params.catIds):
        values = precision[:, :, k]
        values = values[values > -1]
        name = evaluation.cocoGt.cats[category_id]["name"]
        result[name] = round(float(values.mean()), 4) if values.size else None
    return result


def voc07_ap(evaluation: COCOeval) -> tuple[float | None, dict[str, float | None]]:
    """VOC 2007 11-point AP at IoU 0.5 of each category, and their mean (VOC07 mAP).

    Rules: VOC07 AP is the mean over recall r in 0, 0.1, ..., 1.0 of the highest precision
    at any recall >= r, a recall never reached counting 0. COCOeval's accumulated precision
    is exactly that at each of its 101 recall points (it makes precision monotone, then
    takes the first point with recall >= r, and leaves 0 where r is never reached), and the
    11 VOC points are among the 101, so this only samples it: IoU 0.5, area "all", 100
    detections per image (VOC has no per-image cap; COCO's 100 rarely binds). A category
    with no ground truth (pycocotools' -1) is None and left out of the mean. Crowd boxes
    are ignored as COCOeval ignores them (VOC's "difficult" flag plays that part there).
    """
    params = evaluation.params
    # look the settings up rather than assume COCOeval's default parameter order
    iou = _index(params.iouThrs, 0.5, "IoU threshold")
    recalls = [_index(params.recThrs, r, "recall point") for r in VOC07_RECALLS]
    area = list(params.areaRngLbl).index("all")
    max_dets = list(params.maxDets).index(100)
    precision = evaluation.eval["precision"][iou, recalls, :, area, max_dets]  # [11, K]
    per_class: dict[str, float | None] = {}
    for k, category_id in enumerate(params.catIds):
        values = precision[:, k]
        name = evaluation.cocoGt.cats[category_id]["name"]
        # -1 marks a category without ground truth in the evaluated images (all 11 alike)
        per_class[name] = None if (values < 0).any() else round(float(values.mean()), 4)
    scored = [value for value in per_class.values() if value is not None]
    mean = round(sum(scored) / len(scored), 4) if scored else None
    return mean, per_class


def _index(values: Any, wanted: float, what: str) -> int:
    matches = [i for i, value in enumerate(values) if abs(float(value) - wanted) < 1e-9]
    if not matches:
        raise ValueError(f"voc07_ap: COCOeval has no {what} {wanted} (has {list(values)})")
    return matches[0]


def _silenced(quiet: bool) -> contextlib.AbstractContextManager:
    return contextlib.redirect_stdout(io.StringIO()) if quiet else contextlib.nullcontext()


def _progress(enabled: bool) -> Progress:
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=Console(stderr=True),
        disable=not enabled,
        transient=True,
    )


def print_report(result: dict[str, Any], console: Console) -> None:
    kinds = [kind for kind in ("bbox", "segm") if kind in result]
    # a title line of its own: a table title would wrap to the narrow table's width
    console.print(f"{result.get('model', 'model')} on {result['images']} images ({result['seconds']:.1f} s)")
    table = Table()
    table.add_column("metric")
    for kind in kinds:
        table.add_column(kind, justify="right")
    for metric in METRICS:
        values = [result[kind].get(metric) for kind in kinds]
        table.add_row(metric, *("n/a" if v is None else f"{v:.3f}" for v in values))
    values = [result[kind].get(VOC07) for kind in kinds]
    table.add_row("VOC07 mAP", *("n/a" if v is None else f"{v:.3f}" for v in values))
    console.print(table)
    classes = list(result[kinds[0]].get("AP_per_class", {})) if kinds else []
    if classes:
        per_class = Table()
        per_class.add_column("AP per class")
        for kind in kinds:
            per_class.add_column(kind, justify="right")
        for kind in kinds:
            per_class.add_column(f"{kind} VOC07", justify="right")
        for name in classes:
            values = [result[kind].get("AP_per_class", {}).get(name) for kind in kinds]
            voc = [result[kind].get("VOC07_per_class", {}).get(name) for kind in kinds]
            # '-': the class has no ground truth in these images, so no AP at all
            per_class.add_row(name, *("-" if v is None else f"{v:.3f}" for v in values + voc))
        console.print(per_class)
    for note in result.get("notes", []):
        console.print(f"note: {note}")


def write_report(result: dict[str, Any], path: Path) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=2) + "\n")
