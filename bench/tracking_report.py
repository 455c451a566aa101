"""The tracking section of BENCHMARKS.md (issue #16): the cost table, the quality tables
and the issue's targets with their verdicts, from the section's entry in results.json
(bench/tracking_cost.py and bench/tracking_quality.py measure it). Rendering only."""

from __future__ import annotations

from bench.markdown import at_most, table, verdict


def figure(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


def signed_percent(error: float | None) -> str:
    return "-" if error is None else f"{error * 100:+.1f} %"


def plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def within(count: dict, bound: float) -> bool:
    """A direction's tracked count within `bound` (relative) of the ground truth's; with no
    crossing in the ground truth, only 0 is."""
    return count["tracked"] == count["truth"] if count["error"] is None else abs(count["error"]) <= bound


def tracking_targets(r: dict) -> list[list[str]]:
    """Issue #16's targets as rows of [target, bound, measured, verdict]."""
    cost, q = r["cost"], r["quality"]
    targets = q["targets"]
    rows = []
    at = next((row for row in cost["rows"] if row["method"] == "bytetrack" and row["zones_lines"]
               and row["objects"] == cost["target_objects"]), None)
    if at is not None:
        median = at["track_ms"]["median"]
        rows.append([f"tracking + zones + lines, ByteTrack, {at['objects']} objects (median per frame)",
                     f"≤ {cost['target_ms']:g} ms", f"{median:.3f} ms (p95 {at['track_ms']['p95']:.3f})",
                     at_most(round(median, 3), cost["target_ms"], " ms")])
    means = {(m["method"], m["stride"]): m for m in q["means"]}
    strides = sorted({m["stride"] for m in q["means"]})
    full, thinned = strides[0], strides[-1]
    for key, name in (("idf1", "IDF1"), ("mota", "MOTA")):
        value = means[("bytetrack", full)][key]
        rows.append([f"{name}, ByteTrack, stride {full} (mean of the clips)", f"≥ {targets[key]:g}", figure(value),
                     "not measured" if value is None else verdict(round(value, 3), targets[key])])
    drop = q["idf1_drop"]["bytetrack"]
    rows.append([f"IDF1 drop, ByteTrack, stride {full} -> {thinned}", f"≤ {targets['idf1_drop']:g}", figure(drop),
                 "not measured" if drop is None else at_most(round(drop, 3), targets["idf1_drop"])])
    counts = [c for c in q["line_counts"] if c["method"] == "bytetrack" and c["stride"] == full]
    outside = [c for c in counts if not within(c, targets["line_error"])]
    worst = max(counts, key=lambda c: abs(c["error"] or 0.0)) if counts else None
    rows.append([f"line counts, ByteTrack, stride {full}, every direction", f"within ±{targets['line_error'] * 100:g} %",
                 f"worst {worst['line']} {worst['direction']} {signed_percent(worst['error'])}" if worst else "-",
                 f"**missed** ({len(outside)} of {len(counts)} directions outside)" if outside else "**met**"])
    for stride in strides:
        ours, baseline = means[("bytetrack", stride)], means[("iou", stride)]
        gains = {name: None if ours[k] is None or baseline[k] is None else ours[k] - baseline[k]
                 for k, name in (("idf1", "IDF1"), ("mota", "MOTA"), ("hota", "HOTA"))}
        better = all(g is not None and g > 0 for g in gains.values())
        rows.append([f"ByteTrack better than the IoU baseline, stride {stride}", "IDF1, MOTA and HOTA higher",
                     ", ".join(f"{n} {'-' if g is None else f'{g:+.3f}'}" for n, g in gains.items()),
                     "**met**" if better else "**missed**"])
    return rows


def render_cost(cost: dict) -> list[str]:
    width, height = cost["size"]
    out = [f"**Cost per frame, detector excluded.** `SourceTracks.frame`, the track stage's work on one frame (the "
           f"tracker, {cost['zones']} zones, {cost['lines']} lines and their events), on synthetic detections: N "
           f"objects of 4 classes on a {width}x{height} frame at {cost['fps']} frames/s, moving on straight lines and "
           "coming back by the opposite edge when they leave, boxes jittered by about a pixel, overlapping where they "
           f"meet, {cost['low_fraction'] * 100:g} % of them low-score candidates in each frame. ByteTrack also runs "
           "with its looks off (`look_gate: 1`: what reading the boxes' colour bands costs; the frame is black here, "
           "which costs the same as any other). Each tracker also runs without the zones and lines (the tracker and "
           "its track events alone). Every variant gets the same frames "
           f"in turn; {cost['frames']} frames timed after {cost['warmup']} of warm-up. Building the frame's message "
           "(`Message.of`: its dict and JSON line), which the stage does for every frame tracked or not, is timed "
           "apart.", ""]
    rows = [[row["objects"], row["method"], "yes" if row["zones_lines"] else "no",
             f"{row['track_ms']['median']:.3f}", f"{row['track_ms']['p95']:.3f}", f"{row['message_ms']['median']:.3f}",
             f"{row['message_ms']['p95']:.3f}", row["detections_per_frame"], row["with_id_per_frame"],
             row["events_per_frame"]] for row in cost["rows"]]
    return out + table(["objects", "tracker", "zones + lines", "tracking ms median", "tracking ms p95",
                        "message ms median", "message ms p95", "detections / frame", "with an id / frame",
                        "events / frame"], rows) + [""]


def render_quality(q: dict) -> list[str]:
    width, height = q["size"]
    rule = q["dont_care"]
    seeds = ", ".join(map(str, q["seeds"]))
    out = [f"**Quality on held-out clips.** {plural(len(q['seeds']), 'clip')} of `detstream synth video` "
           f"({width}x{height}, {q['fps']} frames/s, {q['seconds']:g} s) with seed{'s' if len(q['seeds']) > 1 else ''} "
           f"{seeds}, which nothing else uses (checked with grep: not the tests, the configs, the Makefile's demo clip "
           "(7) and training sets (1-3), nor the generator's default (0))"
           + (f"; seeds {q['development_seeds']} served while developing the tracker and are not used"
              if q.get("development_seeds") else "")
           + ". Each clip runs through `evaluate`, what "
           "`detstream eval-track` runs, four times: ByteTrack and the IoU baseline, every frame and every 3rd frame; "
           f"model `{q['model']}` ({q['engine']}, loaded once for all runs). Only the processed frames are scored: "
           "IDF1, MOTA and ID switches by py-motmetrics, HOTA by TrackEval, with the don't-care rule of "
           f"[docs/track-eval.md](docs/track-eval.md#rules) (ground truth under {rule['min_height']:g} px tall or more "
           f"than {rule['max_occluded']:g} hidden is neither a miss nor a false positive). Means are over the clips.",
           ""]
    rows = [[run["clip"], run["method"], run["stride"], figure(run["idf1"]), figure(run["mota"]), figure(run["hota"]),
             run["id_switches"]] for run in q["runs"]]
    rows += [["**mean**", m["method"], m["stride"], figure(m["idf1"]), figure(m["mota"]), figure(m["hota"]),
              "-" if m["id_switches"] is None else f"{m['id_switches']:.1f}"] for m in q["means"]]
    out += table(["clip", "tracker", "stride", "IDF1", "MOTA", "HOTA", "ID switches"], rows)
    drops = ", ".join(f"{method} {figure(drop)}" for method, drop in q["idf1_drop"].items())
    return out + ["", f"IDF1 drop from stride 1 to stride 3: {drops}.", ""]


def render_lines(q: dict) -> list[str]:
    runs = list(dict.fromkeys((c["method"], c["stride"]) for c in q["line_counts"]))
    directions = list(dict.fromkeys((c["line"], c["direction"]) for c in q["line_counts"]))
    by = {(c["method"], c["stride"], c["line"], c["direction"]): c for c in q["line_counts"]}
    out = ["Counting lines, crossings summed over the clips and the classes: `vertical-X` across the street at X of "
           "the frame's width (`in`: rightwards), `horizontal` along the near pavement at 3/4 of its height (`in`: "
           "downwards; people walk along it and hardly ever cross it, so what it counts is mostly flicker: feet "
           "hidden by others, boxes cut short, identities swapped between neighbours). The ground truth is the "
           "ground-truth tracks' crossings through the same Scene, on every frame, each object placed by its "
           "amodal box (hidden parts included, clipped to the frame) where the annotations have one "
           "([docs/track-eval.md](docs/track-eval.md#line-crossings)); the run's are its `line_cross` "
           "events. Tracked (relative error):", ""]
    rows = []
    for line, direction in directions:
        counts = [by[(*run, line, direction)] for run in runs]
        rows.append([line, direction, counts[0]["truth"],
                     *(f"{c['tracked']} ({signed_percent(c['error'])})" for c in counts)])
    out += table(["line", "direction", "ground truth", *(f"{m}, stride {s}" for m, s in runs)], rows)
    truths = [by[(*runs[0], line, direction)]["truth"] for line, direction in directions]
    if any(truths):
        fewest = min(t for t in truths if t)
        out += ["", f"The ground truth has {sum(truths)} crossings in all; the direction with the fewest has {fewest}, "
                f"so one crossing more or less there is {100 / fewest:.0f} % of it. A direction with none shows `-`: "
                "any crossing counted there is outside the target."]
    return out + [""]


def render_tracking(r: dict) -> list[str]:
    targets = ["Issue #16's targets:", ""] + table(["target", "bound", "measured", "verdict"], tracking_targets(r))
    return render_cost(r["cost"]) + render_quality(r["quality"]) + render_lines(r["quality"]) + targets + [""]
