"""BENCHMARKS.md from bench/results.json: rendering only, nothing is measured here, so a
report can be re-rendered (`python -m bench.run_all --render-only`) without re-running anything.

Each section renders from its own entry; a section missing from the JSON is listed as not
run. Targets from issue #8 (and #16 for tracking) get a verdict computed from the measured
figures: met, or missed by how much.
"""

from __future__ import annotations

from typing import Callable

from bench.markdown import at_most, table, verdict
from bench.tracking_report import render_tracking, tracking_targets

SECTION_TITLES = {
    "decode": "1. Decode",
    "engines": "2. Engines",
    "efficiency": "3. Pipeline efficiency",
    "live": "4. Live latency under overload",
    "scaling": "5. Scaling",
    "redis": "6. Redis publish",
    "backends": "7. The demo: engine auto against PyTorch",
    "metrics": "8. Metrics overhead",
    "coco": "9. COCO models from torchvision",
    "tracking": "10. Tracking: cost and quality (issue #16)",
    "clips": "11. Event clips: buffer and writing cost (issue #18)",
    "proposals": "12. Region proposals: selective search against the RPN (issue #19)",
    "ladder": "13. The R-CNN ladder (issue #19)",
    "int8": "14. INT8 against FP32 on ONNX Runtime (issue #20)",
    "capacity": "15. Camera capacity under load (issue #21)",
    "soak": "16. Soak: one run under combined faults (issue #21)",
}
# what a report without the section says instead, for the sections measured only on request
NOT_YET = {
    "capacity": "Not yet measured: `make capacity` on a quiet machine (about a minute and a half per step of "
                "cameras; a busy machine's figure says nothing about this one's).",
    "soak": "Not yet measured: `make soak MINUTES=60` (it records its verdict here).",
}


def _or_unknown(value: float | None, spec: str, unit: str = "") -> str:
    # a soak recorded from a folder written before the harness kept its load and CPU time has neither
    return "not recorded" if value is None else format(value, spec) + unit


def section_header(key: str, section: dict) -> list[str]:
    m = section["machine"]
    return [
        f"## {SECTION_TITLES[key]}",
        "",
        f"*{m['cpu']}, {m['cores']} cores, load average {_or_unknown(section['load_average'], '.1f')} at the start; "
        f"{section['elapsed_s']:.0f} s wall, {_or_unknown(section['cpu_s'], '.0f', ' s')} CPU of this process; "
        f"{section['finished']}*",
        "",
    ]


def render_decode(r: dict) -> list[str]:
    out = [f"Frames/s decoding H.264 to frames in memory; ffmpeg CLI {r['ffmpeg_cli']}, PyAV {r['pyav']} "
           f"(libavcodec {r['pyav_libavcodec']}). Threads: {r['threads']}. Median of {r['rounds']} alternating rounds.", ""]
    for video in r["videos"]:
        fps = video["fps_median"]
        out += [f"**{video['size']}** ({video['path']}, {video['frames']} frames):", ""]
        out += table(["method", "frames/s"], [[name, f"{value:.1f}"] for name, value in fps.items()])
        out += ["", f"detstream / ffmpeg: without conversion **{video['ratio_no_conversion']:.2f}**, "
                f"with RGB conversion **{video['ratio_rgb24']:.2f}**.", ""]
    return out


def render_engines(r: dict) -> list[str]:
    out = [f"Per-call latency of the engine alone (dense part, proposals, RoI heads) on frames of the demo "
           f"video normalized beforehand; median of {r['calls']} calls alternating between backends, after a warm-up. "
           + ("" if r["tensorrt"] else "TensorRT: not measured (no CUDA GPU on this machine)."), ""]
    return out + engine_tables(r["models"])


def engine_tables(models: list[dict]) -> list[str]:
    """Per model: ms per call and images/s for each backend and batch, and the ORT/PyTorch ratio."""
    out: list[str] = []
    for model in models:
        backends = list(dict.fromkeys(row["backend"] for row in model["rows"]))
        by = {(row["backend"], row["batch"]): row for row in model["rows"]}
        batches = sorted({row["batch"] for row in model["rows"]})
        header = ["batch"] + [f"{b} ms/call (ms/image)" for b in backends] + [f"{b} images/s" for b in backends]
        header.append("ORT / PyTorch")
        rows = []
        for batch in batches:
            rows.append([batch]
                        + [f"{by[(b, batch)]['ms_per_call']} ({by[(b, batch)]['ms_per_image']})" for b in backends]
                        + [by[(b, batch)]["images_per_s"] for b in backends]
                        + [f"{model['ratio_onnxruntime_over_torch'][str(batch)]:.2f}x"])
        size = "x".join(map(str, model["input_size"]))
        out += [f"**{model['model']}** (input {size}):", ""] + table(header, rows) + [""]
    return out


def render_efficiency(r: dict) -> list[str]:
    fps = r["fps_median"]
    targets = r["targets"]
    out = [f"`detstream run` on the first {r['frames']} frames of the demo video ({r['engine']}, batch {r['batch']}, "
           f"JSON lines sink) against the detector alone on the same frames decoded beforehand, and against the naive "
           f"loop (OpenCV `VideoCapture` -> model -> JSON line, sequential, same package and engine). "
           f"Median of {r['rounds']} alternating rounds.", ""]
    out += table(["what", "frames/s"], [
        ["detstream run (pipeline)", fps["pipeline"]],
        ["engine alone (the detect stage's work)", fps["engine_alone"]],
        ["detector alone: preprocess + engine in series", fps["detector_alone"]],
        ["naive loop", fps["naive"]],
    ])
    out += ["",
            f"- Efficiency, pipeline / engine alone: **{r['efficiency']:.2f}** — target ≥ {targets['efficiency']}: "
            f"{verdict(r['efficiency'], targets['efficiency'])}. (Against preprocess + engine in series: "
            f"{r['efficiency_vs_detector_with_preprocess']:.2f}; the pipeline overlaps preprocessing with the engine.)",
            *([f"- Engine alone at the pipeline's own batch sizes: {fps['engine_alone_same_batches']:.2f} frames/s "
               f"(the efficiency above; at the full batch {r['batch']}: {r['efficiency_vs_engine_at_full_batch']:.2f}). "
               f"CPU-time bound: every stage's CPU time per frame ("
               + ", ".join(f"{s} {v * 1000:.1f} ms" for s, v in r["cpu_s_per_frame"].items())
               + f") allows at most {r['cpu_bound_fps']:.2f} frames/s on this machine's cores; the pipeline reaches "
               f"**{r['efficiency_vs_cpu_bound']:.2f}** of it."] if "cpu_bound_fps" in r else []),
            f"- Speedup over the naive loop: **{r['speedup_over_naive']:.2f}x** — target ≥ {targets['speedup_over_naive']}x: "
            f"{verdict(r['speedup_over_naive'], targets['speedup_over_naive'], 'x')}.",
            "- Where frames wait in the pipeline (median ms from one stage's hand-off to the next, queue waits "
            "included): " + ", ".join(f"{s} {v:g}" for s, v in r["stage_latency_ms_median"].items())
            + "; engine calls per batch size: " + ", ".join(f"{b}: {n}" for b, n in r["batch_sizes"].items()) + ".",
            ""]
    if r["efficiency"] < targets["efficiency"]:
        out += ["Why the efficiency target is missed: on 2 cores the engine's intra-op threads already use every "
                "core, so the decode, preprocess and sink threads take CPU time from it rather than running beside "
                "it; the stage latencies above show the detect stage is the one frames wait for.", ""]
    return out


def render_live(r: dict) -> list[str]:
    limit_factor = r["target_p99_over_batch"]
    out = [f"Simulated cameras: {r['camera']}, served by the RTSP test server (gst-rtsp-server). Detector: a fake "
           f"engine taking {r['detector_delay_s'] * 1000:.0f} ms per call, whatever the batch, so it cannot keep up. "
           "Age = time a result is written - time the camera produced the frame (stream timestamps mapped to the "
           "wall clock by the earliest-arriving frame), over results from 2 s after the first to the end of the run. "
           "detstream: default live settings, max batch = number of cameras. Naive loop: one `cv2.VideoCapture` per "
           "camera, read a frame of each, one detector call, JSON lines. One run per row, back to back.", ""]
    rows = []
    for row in r["rows"]:
        age = row["age_ms"]
        rows.append([row["sources"], row["method"], row["seconds"], row["processed"], f"{row['drop_rate'] * 100:.0f} %",
                     age["p50"], age["p99"], age["max"], f"{row['age_growth_s_per_s']:+.2f}", row["batch_ms_median"]])
    out += table(["cameras", "method", "s", "results", "dropped", "age p50 ms", "age p99 ms", "age max ms",
                  "age growth s/s", "detector ms/batch"], rows)
    out.append("")
    for n in sorted({row["sources"] for row in r["rows"]}):
        ours = next(row for row in r["rows"] if row["sources"] == n and row["method"] == "detstream")
        naive = next(row for row in r["rows"] if row["sources"] == n and row["method"] != "detstream")
        bound = round(limit_factor * ours["batch_ms_median"])
        out.append(f"- {n} camera(s): detstream age p99 {ours['age_ms']['p99']} ms, target ≤ {limit_factor:g}x the "
                   f"detector's per-batch time = {bound} ms: {at_most(ours['age_ms']['p99'], bound, ' ms')}; "
                   f"the naive loop's age grows {naive['age_growth_s_per_s']:+.2f} s per second "
                   f"({'grows, as expected' if naive['age_growth_s_per_s'] > 0.1 else 'does NOT grow'}).")
        if "rss_mb" in ours:  # reports from before these were recorded lack them
            rss = ours["rss_mb"]
            out.append(f"  Every frame accounted for (received = processed + dropped): "
                       f"{'exact' if ours['accounting_exact'] else '**MISMATCH**'}; process RSS {rss['first']} MB "
                       f"at the start, {rss['last']} MB at the end (max {rss['max']} MB).")
        stages = ours.get("stage_latency_ms_median", {})
        if ours["age_ms"]["p99"] > bound and stages:
            waiting = stages.get("detect", 0) - ours["batch_ms_median"]
            out.append("  Where detstream's frames wait (median ms per stage, queue waits included): "
                       + ", ".join(f"{s} {v:g}" for s, v in stages.items())
                       + f"; about {waiting:.0f} ms of the detect stage's share is waiting for the detector, "
                       f"{waiting / ours['batch_ms_median']:.1f} batch times. Dropped by cause: "
                       + ", ".join(f"{c} {v}" for c, v in ours.get("dropped_by_cause", {}).items()) + ".")
    if any(row["method"] == "detstream" and row["age_ms"]["p99"] > limit_factor * row["batch_ms_median"] for row in r["rows"]):
        out += ["", "Why: with a live source the pipeline holds up to three frames ahead of the detector's current "
                "call — one in the one-batch queue before detect, one prepared by preprocess waiting to be put "
                "there, and the source queue's newest frame — so a result is about three batch times old instead of "
                "at most two. The fix is for preprocess to take a live frame only when the detector is ready for it "
                "(a hand-off with no buffered batch), so the freshest frame is the one detected."]
    return out + [""]


def render_scaling(r: dict) -> list[str]:
    grid = r["grid"]
    batches = sorted({row["batch"] for row in grid["rows"]})
    sources = sorted({row["sources"] for row in grid["rows"]})
    by = {(row["sources"], row["batch"]): row["fps_median"] for row in grid["rows"]}
    out = [f"`detstream run` frames/s (all sources together), {grid['engine']}, every source the demo video, "
           f"{grid['frames_per_run']} frames per run split over the sources; median of {r['rounds']} alternating rounds.", ""]
    out += table(["sources \\ max batch"] + [str(b) for b in batches],
                 [[s] + [by[(s, b)] for b in batches] for s in sources])
    decoders = r["batch_decoders"]
    out += ["", f"`detstream batch` with 1, 2, 4 concurrent decoders ({decoders['collection']}; engine: "
            f"{decoders['engine']}, so this is what the decoders can feed); median of {r['rounds']} alternating rounds.", ""]
    out += table(["decoders", "frames/s", "vs 1"], [[row["decoders"], row["fps_median"], f"{row['vs_1']:.2f}x"]
                                                   for row in decoders["rows"]])
    return out + [""]


def render_redis(r: dict) -> list[str]:
    out = [f"Messages/s into one self-started redis-server {r['redis_server']}: the Redis sink's publisher on "
           f"{r['messages']} real schema-v1 messages ({r['message_bytes']} bytes) against `redis-benchmark` XADD of a "
           f"payload of the same size, one client. Median of {r['rounds']} alternating rounds.", ""]
    out += table(["method", "messages/s"], [[name, value] for name, value in r["msgs_per_s_median"].items()])
    out += ["", f"Sink pipelined / redis-benchmark pipelined: **{r['sink_pipelined_over_redis_benchmark']:.2f}**; "
            f"sink one round trip per message / redis-benchmark -P 1: **{r['sink_unpipelined_over_redis_benchmark']:.2f}**; "
            f"pipelining gains {r['pipelined_over_unpipelined']:.1f}x.", ""]
    return out


def render_backends(r: dict) -> list[str]:
    if "ratio_auto_over_torch" not in r:  # results.json from before the section compared the demo's engines
        return ["Measured by an earlier version of this section: re-measure with `--only backends`.", ""]
    ran_on, fps, load = r["ran_on"], r["fps_median"], r["load_s_median"]
    out = [f"`make demo` as shipped: `{r['config']}` (model `{r['model']}`, batch {r['batch']}, sinks "
           f"{', '.join(r['sinks'])}) on the first {r['frames']} frames of the demo video, with `engine: auto` and with "
           f"`engine: torch`. Median of {r['rounds']} alternating rounds. auto ran the model file's ONNX Runtime "
           f"package from the cache; exporting it into an empty cache took **{r['export_s']:.1f} s**, once, before "
           "the rounds (the first run on a new machine pays it; later runs load the package).", ""]
    rows = [[f"`{engine}`", ran_on[engine], fps[engine], ", ".join(map(str, r["fps_runs"][engine])), load[engine]]
            for engine in fps]
    out += table(["engine", "ran on", "frames/s (median)", "frames/s (runs)", "engine load s"], rows)
    out += ["", f"auto / torch: **{r['ratio_auto_over_torch']:.2f}x** the frames/s.", ""]
    return out


def render_metrics(r: dict) -> list[str]:
    fps = r["fps_median"]
    out = [f"`detstream run` on the first {r['frames']} frames of the demo video ({r['engine']}, batch {r['batch']}) with "
           f"metrics off (`metrics.enabled: false`) and on as `detstream profile` has them (metrics, trace spans, "
           f"timeline sampler), one engine, after a warm-up run. Median of {r['rounds']} alternating rounds.", ""]
    out += table(["metrics", "frames/s"], [["off", fps["off"]], ["on", fps["on"]]])
    overhead = round(r["overhead"] * 100, 1)
    out += ["", f"- Overhead, 1 - on/off: **{overhead:g} %** — target < {r['target_overhead'] * 100:g} %: "
            f"{at_most(overhead, r['target_overhead'] * 100, ' %')}. Differences below the run-to-run noise "
            "(several % on a shared machine) say only that the cost is below that noise.", ""]
    return out


def render_coco(r: dict) -> list[str]:
    intro = [f"torchvision's COCO R-CNNs through `torchvision:NAME` at their default input sizes, engine alone as in "
             f"section 2 (median of {r['calls']} calls alternating between backends, after a warm-up). Weights: "
             f"{r['weights']}: the backbone, RPN and box head cost what they cost with COCO's weights, but almost no "
             "candidate passes the score threshold, so the mask model's mask head barely runs (a lower bound).", ""]
    return intro + engine_tables(r["models"])


def render_clips(r: dict) -> list[str]:
    ring, clip = r["ring"], r["clip"]
    width, height = r["size"]
    out = [f"Per camera: the buffer of encoded packets each source with clips keeps, and writing a clip out of it "
           f"(stream copy), on `{r['video']}`: {width}x{height} at {r['fps']:g} fps, {r['bitrate_mbps']} Mbit/s, a key "
           f"frame every {r['gop_frames']} frames. Buffer {r['buffer_s']:g} s / {r['buffer_bytes'] / 1e6:g} MB, "
           f"{ring['video_seconds']:g} s of video put in per round (as the reader does, CPU of the `put` calls only); "
           f"clips of {clip['clip_s']:g} s (pre 5 + post 5) written by the writer thread (temporary file, fsync, "
           f"rename, retention). CPU in % of one core. Median of {r['rounds']} rounds.", ""]
    out += table(["what", "CPU", "memory", "detail"], [
        ["packet buffer", f"{ring['cpu_percent']:.3f} %", f"{ring['memory_mb']} MB",
         f"{ring['us_per_packet']} µs per packet; {ring['held_s']} s held, {ring['payload_mb']} MB of it packets"],
        ["decode stage (what the reader thread does anyway)", f"{r['decode_cpu_percent']:.2f} %", "-",
         f"buffer / decode: {r['ring_over_decode'] * 100:.2f} %"],
        [f"writing a {clip['clip_s']:g} s clip", f"{clip['cpu_percent_at_one_a_minute']:.3f} % at one clip a minute",
         "-", f"{clip['cpu_ms']} ms CPU, {clip['wall_ms']} ms wall, {clip['mb']} MB"],
        ["snapshots of one track (annotated 720p frame + crop)", "-", "-", f"{r['snapshot_cpu_ms']} ms CPU"],
    ])
    return out + [""]


def render_proposals(r: dict) -> list[str]:
    width, height = r["size"]
    out = [f"Recall of region proposals on {r['images']} held-out synthetic images ({width}x{height}, `detstream synth "
           f"dataset` seed {r['seed']}, {r['ground_truth_boxes']} ground-truth boxes): the share of ground-truth boxes "
           "whose best IoU with the image's first N proposals reaches 0.5 (0.7), what `detstream proposals recall` "
           f"measures. Selective search (OpenCV, fast mode) on images resized to a longer side of {r['max_side']} px; "
           f"the RPN with its post-NMS top-N raised to {max(r['counts'])}; {r['threads']} threads each, one image at a "
           "time. Seconds per image include only the proposal step.", ""]
    rows = []
    for source in r["sources"]:
        for iou in ("0.5", "0.7"):
            rows.append([source["source"], iou, *(f"{source['recall'][f'{iou}@{n}']:.3f}" for n in r["counts"]),
                         f"{source['mean_proposals']:.0f}", f"{source['seconds_per_image']:.3f}"])
    out += table(["source", "IoU", *(f"@{n}" for n in r["counts"]), "proposals / image", "s / image"], rows)
    return out + [""]


def _minutes(seconds: float | None) -> str:
    # models trained before the training time was recorded (docs/models.md says how long they took)
    return "not recorded" if seconds is None else f"{seconds / 60:.0f} min"


def render_ladder(r: dict) -> list[str]:
    out = [f"Each rung through `detstream eval`'s path (preprocess, proposals, engine, selection) on the first "
           f"{r['images']} images of the held-out split {r['data']}, PyTorch, batch 1, {r['threads']} threads, score "
           f"floor {r['score_floor']}. COCO mAP@[.5:.95], AP50 and VOC 2007 11-point mAP@0.5 from one pycocotools "
           "run; seconds per image as a run spends them, proposals' share apart; training time in steps (R-CNN: "
           "with its SVMs and regressors) on this 2-core CPU, not counting the Faster R-CNN backbone every other "
           "rung starts from (`init_from`).", ""]
    rows = []
    for row in r["rows"]:
        if not row["available"]:
            rows.append([row["rung"], f"not available ({row['model']} missing)", *[""] * 7])
            continue
        start = " + its backbone" if row.get("init_from") else ""
        rows.append([row["rung"], f"`{row['architecture']}`", f"{row['AP']:.3f}", f"{row['AP50']:.3f}",
                     f"{row['VOC07']:.3f}", f"{row['proposal_seconds_per_image']:.3f}",
                     f"{row['seconds_per_image']:.3f}", _minutes(row["train_seconds"]) + start, f"{row['size_mb']:.1f}"])
    out += table(["rung", "architecture", "COCO mAP", "AP50", "VOC07 mAP", "proposals s / image", "s / image",
                  "training", "MB"], rows)
    out += ["", "Test-time speed relative to Faster R-CNN (seconds per image over Faster R-CNN's): the papers' "
            f"GPU figures ({', '.join(f'{k} {v} s' for k, v in r['seed_seconds'].items())}) and ours on this CPU.", ""]
    out += table(["rung", "papers (GPU)", "ours (CPU)"],
                 [[x["rung"], f"{x['seed_ratio']:.1f}x", "?" if x["our_ratio"] is None else f"{x['our_ratio']:.1f}x"]
                  for x in r["ratios"]])
    return out + [""]


def render_int8(r: dict) -> list[str]:
    out = [f"Each embedded model exported twice: fp32 and int8 with explicit Q/DQ (`detstream export --int8`, "
           f"calibrated on {r['calibration']}, never the test split). ONNX Runtime on this CPU: ms per image of the "
           f"engine alone (median of {r['calls']} calls alternating between the two), `detstream run`'s frames/s on the "
           f"demo video at batch 2, and COCO mAP@[.5:.95] on the test split {r['test']} through `detstream eval`. "
           f"Targets (issue #20): int8 frames/s ≥ {r['targets']['fps_ratio']}x fp32's, mAP within "
           f"{r['targets']['map_cost']} of fp32.", ""]
    rows = []
    for m in r["models"]:
        ms = {(x["precision"], x["batch"]): x["ms_per_image"] for x in m["rows"]}
        for precision in ("fp32", "int8"):
            rows.append([f"`{m['model']}`", precision, *(f"{ms[(precision, b)]:.1f}" for b in (1, 2)),
                         f"{m['pipeline_fps'][precision]:.2f}",
                         *(f"{m['map'][precision][k]:.3f}" if k in m["map"][precision] else "" for k in ("bbox", "segm"))])
    out += table(["model", "precision", "ms / image, batch 1", "batch 2", "pipeline frames/s", "box mAP", "mask mAP"],
                 rows)
    if all("dense_ms_per_image" in x for m in r["models"] for x in m["rows"]):  # older results lack it
        out += ["", "The dense part alone (backbone, FPN, RPN head: what int8 speeds up; the rest of the engine is torch "
                "glue it does not touch), ms per image and its share of the engine:", ""]
        out += table(["model", "precision", "batch", "dense ms / image", "engine ms / image", "dense share"],
                     [[f"`{m['model']}`", x["precision"], str(x["batch"]), f"{x['dense_ms_per_image']:.1f}",
                       f"{x['ms_per_image']:.1f}", f"{x['dense_ms_per_image'] / x['ms_per_image']:.0%}"]
                      for m in r["models"] for x in m["rows"]])
    out += ["", "Verdicts, int8 against fp32:", ""]
    target = r["targets"]
    out += table(["model", "engine speed-up (batch 1 / 2)", "pipeline frames/s ratio", "mAP cost (box / mask)"],
                 [[f"`{m['model']}`", " / ".join(f"{v:.2f}x" for v in m["speedup_int8_over_fp32"].values()),
                   verdict(m["pipeline_fps_ratio"], target["fps_ratio"], "x"),
                   " / ".join(at_most(v, target["map_cost"]) for v in m["map_cost"].values())]
                  for m in r["models"]])
    if all("relu_ceiling" in m for m in r["models"]):
        out += ["", "What-if: the dense part with ReLU in place of HardSwish (and Sigmoid for HardSigmoid, untrained: speed "
                "only), quantized as the CPU flavour is, so that every activation has an int8 kernel. Its speed-up over "
                "the fp32 dense part, and an estimate of the int8 engine with such a dense part (the int8 engine measured "
                "above, its dense part's time replaced by fp32's divided by that speed-up):", ""]
        rows = []
        for m in r["models"]:
            ms = {(x["precision"], x["batch"]): x for x in m["rows"]}
            for batch, speedup in m["relu_ceiling"]["dense_speedup"].items():
                fp32, int8 = ms[("fp32", int(batch))], ms[("int8", int(batch))]
                engine = int8["ms_per_image"] - int8["dense_ms_per_image"] + fp32["dense_ms_per_image"] / speedup
                rows.append([f"`{m['model']}`", batch, f"{speedup:.2f}x", f"{fp32['ms_per_image'] / engine:.2f}x"])
        out += table(["model", "batch", "dense part, int8 with ReLU", "int8 engine with it, over fp32"], rows)
    out += ["", "Where the dense part's time goes at batch 1 (ONNX Runtime's profiler, ms per call: the kernels' "
            "total, then the five largest op types):", ""]
    for m in r["models"]:
        for precision, ops in m["dense_ms_by_op"].items():
            top = ", ".join(f"{op} {ms:.1f}" for op, ms in list(ops.items())[:5])
            out.append(f"- `{m['model']}` {precision}: total {sum(ops.values()):.1f}; {top}")
    return out + [""]


def render_capacity(r: dict) -> list[str]:
    bound = r["bound"]
    out = [f"How many cameras ({r['camera']}) one `detstream run` holds with `max_fps: {r['max_fps']:g}` on every "
           f"source, the default model (`{r['model']}`, `engine: auto`) and default live settings (JSON lines sink). "
           "Steps of 1, 2, 3, ... cameras, each its own RTSP test server (gst-rtsp-server) on this machine; each step "
           f"one run, measured for {r['window_s']:g} s, after every camera's first frame and {r['warmup_s']:g} s of "
           f"warm-up. The bound, for every camera over the window: frame age p99 ≤ {bound['max_age_ms']:g} ms (the "
           "sources' `max_age_ms`; age = when the result left the last stage - when the camera produced the frame, "
           f"on the camera's clock as in section 4), at most {bound['max_drop']:.0%} of the frames `max_fps` admits "
           "dropped, no reconnect. "
           "CPU in % of one core over the window: detstream (the whole process) and the test servers, which a real "
           "deployment would not run (subtract them for the headroom). Capacity = the largest N whose step and "
           "every smaller one held.", ""]
    rows = []
    for step in r["steps"]:
        w = step["worst"]
        rows.append([step["cameras"], "held" if step["held"] else "**broken**",
                     "-".join(f"{v:.2f}" for v in w["messages_per_s"]),
                     *("-" if w[k] is None else w[k] for k in ("age_p50_ms", "age_p99_ms")),
                     f"{w['drop_fraction']:.1%}", step["cpu_percent"], step["servers_cpu_percent"], step["rss_mb_max"],
                     "; ".join(step["broken"])])
    out += table(["cameras", "verdict", "messages/s per camera", "age p50 ms (worst camera)", "age p99 ms (worst)",
                  "dropped (worst)", "detstream CPU %", "test servers CPU %", "RSS MB", "broken by"], rows)
    more = " or more (every step up to the limit held)" if r["at_limit"] else ""
    return out + ["", f"**Capacity: {r['capacity']} camera(s){more}** at 720p/25 fps with `max_fps: {r['max_fps']:g}`.",
                  ""]


def render_soak(r: dict) -> list[str]:
    n = r["numbers"]
    out = [f"One `detstream run` for {n['duration_s'] / 60:.0f} minutes (seed {r['seed']}) against cameras killed, "
           "stalled and locked by a wrong password, a looping file, Redis killed and restarted under the sink, a "
           "consumer group reading throughout and cameras added and removed through the control API; sampled every "
           f"{r['sample_s']:g} s ({n['samples']} samples, warm-up {r['warmup_s']:.0f} s). Rules, curves and the "
           f"faults one by one: [docs/soak.md](docs/soak.md); the run's folder was {r['folder']}.", "",
           f"Verdict: **{'PASS' if r['passed'] else 'FAIL'}**.", ""]
    out += table(["check", "result", "detail"],
                 [[c["name"], "pass" if c["passed"] else "**FAIL**", c["detail"]] for c in r["checks"]])
    faults = ", ".join(f"{kind} {count}" for kind, count in n["faults"].items())
    out += ["", f"RSS {n['rss_mb'][0]:.0f}-{n['rss_mb'][1]:.0f} MB, threads {n['threads'][0]}-{n['threads'][1]}, "
            f"fds {n['fds'][0]}-{n['fds'][1]} over the run; messages produced {n['produced']}, consumed "
            f"{n['consumed']}; faults: {faults}; slowest recovery {n['slowest_recovery_s']} s.", ""]
    return out


RENDERERS: dict[str, Callable[[dict], list[str]]] = {
    "decode": render_decode,
    "engines": render_engines,
    "efficiency": render_efficiency,
    "live": render_live,
    "scaling": render_scaling,
    "redis": render_redis,
    "backends": render_backends,
    "metrics": render_metrics,
    "coco": render_coco,
    "tracking": render_tracking,
    "clips": render_clips,
    "proposals": render_proposals,
    "ladder": render_ladder,
    "int8": render_int8,
    "capacity": render_capacity,
    "soak": render_soak,
}


def targets_summary(sections: dict) -> list[str]:
    rows = []
    if "efficiency" in sections:
        r = sections["efficiency"]["result"]
        rows.append(["pipeline efficiency (vs engine alone)", f"≥ {r['targets']['efficiency']}", f"{r['efficiency']:.2f}",
                     verdict(r["efficiency"], r["targets"]["efficiency"])])
        rows.append(["speedup over the naive loop", f"≥ {r['targets']['speedup_over_naive']}x", f"{r['speedup_over_naive']:.2f}x",
                     verdict(r["speedup_over_naive"], r["targets"]["speedup_over_naive"], "x")])
    if "live" in sections:
        r = sections["live"]["result"]
        for row in r["rows"]:
            if row["method"] == "detstream":
                bound = round(r["target_p99_over_batch"] * row["batch_ms_median"])
                rows.append([f"live age p99, {row['sources']} camera(s)", f"≤ {bound} ms", f"{row['age_ms']['p99']} ms",
                             at_most(row["age_ms"]["p99"], bound, " ms")])
            else:
                grows = row["age_growth_s_per_s"] > 0.1
                rows.append([f"naive loop's age grows, {row['sources']} camera(s)", "> 0.1 s/s",
                             f"{row['age_growth_s_per_s']:+.2f} s/s", "**yes**" if grows else "**no**"])
    if "tracking" in sections:
        rows += tracking_targets(sections["tracking"]["result"])
    return table(["target (issue #8; tracking: #16)", "bound", "measured", "verdict"], rows) if rows else ["No targeted section was run."]


def render(results: dict) -> str:
    sections = results["sections"]
    lines = ["# Benchmarks", "",
             f"Generated by `make bench` (`python -m bench.run_all`) from `bench/results.json`; commit {results['commit']}, "
             f"{results['finished']}. Ratios are measured side by side in one run on one machine: "
             f"{results['machine']['cpu']}, {results['machine']['cores']} cores."
             + (" **Quick mode** (few frames and repeats): for development, not for quoting." if results.get("quick") else ""),
             ""]
    if results.get("note"):
        lines += [f"> **Note:** {results['note']}", ""]
    lines += ["## Targets", ""] + targets_summary(sections) + [""]
    timing = [[SECTION_TITLES[k], f"{s['elapsed_s']:.0f}", _or_unknown(s["cpu_s"], ".0f"), _or_unknown(s["load_average"], ".1f")]
              for k, s in sections.items()]
    timing.append(["total (with set-up)", f"{results['elapsed_s']:.0f}", "", ""])
    lines += ["## Time per section", ""] + table(["section", "wall s", "CPU s", "load average at start"], timing) + [""]
    for key in SECTION_TITLES:
        if key in sections:
            lines += section_header(key, sections[key]) + RENDERERS[key](sections[key]["result"])
        else:
            lines += [f"## {SECTION_TITLES[key]}", "", NOT_YET.get(key, "Not run in this report."), ""]
    return "\n".join(lines).rstrip() + "\n"
