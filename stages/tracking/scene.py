"""Zones and lines of one source: confirmed tracks in, zone and line events out.

Rules:
- Geometry: normalized coordinates are scaled by the frame size (x * width, y * height),
  pixel ones are used as given. A zone or line wholly outside the frame is not an error
  (the config cannot know the frame size): it logs one warning naming the source, the
  shape and the frame size, and never fires while the frame has that size.
- A track is placed by the anchor point of its box (the zone's or line's `anchor`).
- Zones: a track enters a zone in the update where its anchor is inside it, and exits in
  the update where it is outside again; dwell_s = the exit's t - the enter's t. A track
  first seen here already inside a zone enters it in that first update (confirmation
  comes a few frames after a track's first_t; zones do not look back). When
  a track ends inside a zone (`end_track`), it exits with dwell up to its last_t.
- Lines (anti-flicker by hysteresis and by time): an anchor takes a side of the line only
  once it is at least `margin_px`, and at least MARGIN_OF_HEIGHT of its box's height, away
  from it; in between it keeps the side it had. A crossing counts when the track has been
  on the other side for `hold_s` of stream time (from the first update there, band
  updates included) *and* its path since it last settled touched the segment itself (not
  the line beyond its ends); it counts in the update that completes the hold. Back on its
  own side before that, the excursion was flicker (a box's bottom jumps while others hide
  the feet, an identity swaps to a neighbour for a few frames) and counts nothing. A
  crossing still held for less when the source ends (`end_track(final=True)`) counts
  then (if it passes the next rule as of its last update). And the box must have moved, not changed shape: since the track last settled,
  the box's centre must have moved across (along the line's normal) at least
  CENTRE_SHARE as far as the anchor did, or the side changes without a count. A box whose
  far edge stayed put while the anchor's edge moved (a person's lower half hidden by a
  car, or cut short by the detector) fails it; an object that moves passes, whatever
  the anchor (for `center` the two are the same point). The path is the straight
  segment between the anchors of consecutive updates, so tracks that jump (frames
  thinned by stride) still count. A track jittering on the line never settles on the
  other side, so it counts nothing; crossing over and back counts twice. A track's path
  starts where it was first seen, not where it was confirmed: in the update that confirms
  it (`started`), its line state is first set from its first box (`first_box`), so an
  object that crosses while still tentative counts. A track whose first box was near the
  line has no side to come from: it counts only from its next change of settled side.
- Direction: `directions[0]` is a crossing from the left-hand to the right-hand side as
  seen on screen walking from point 1 to point 2 (image y grows downward: for a line
  from (0, 100) to (200, 100) the right-hand side is below it, so moving down is "in").
- Counts are per class name. Events come in zone order, then line order, each in the
  order of the tracks given. Times are stream seconds (the frame's pts).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from pipeline.core.scene_config import LineConfig, ZoneConfig
from pipeline.core.shapes import PolygonSet, box_anchors, segments_intersect, shape_meets_box, side_of_line, to_pixels
from stages.tracking.track_rows import TrackRows
from stages.tracking.tracks import TrackView

log = logging.getLogger("detstream")

Counts = dict[str, dict[str, int]]  # count name (zone: inside/entered/exited; line: direction) -> class name -> n



# A line's hysteresis band is at least this share of the box's height. A tenth let people
# walking *along* a line count crossings whenever others hid their feet (a box's bottom
# jumps by a third of its height and back); a fifth (a step, for a walker) held on the
# development clips, and no real crossing stops that close to the line.
MARGIN_OF_HEIGHT = 0.2
# A crossing's box centre moves at least this share of its anchor's move along the line's
# normal: 0.5 is a box whose far edge stayed put (only the anchor's edge moved: it shrank
# or grew), 1 a box that moved whole. 0.6 asks the far edge to move a fifth as far as the
# anchor: a person walking towards a camera only 2.2 m high, whose head moves about a
# fifth as far as the feet, still counts.
CENTRE_SHARE = 0.6
# pts are rounded to the stream's time base: a hold of 0.2 s must be met by frames 0.2 s apart
HOLD_SLACK_S = 1e-6

@dataclass(frozen=True)
class SceneEvent:
    type: str  # "zone_enter" | "zone_exit" | "line_cross"
    track: TrackView
    t: float  # stream time of the event (the frame's pts)
    zone: str | None = None
    line: str | None = None
    direction: str | None = None  # the line's direction name (line_cross)
    dwell_s: float | None = None  # zone_exit: stream seconds spent inside
    counts: Counts = field(default_factory=dict)  # that zone's or line's counts after this event



def _snapshot(counts: Counts) -> Counts:
    return {key: dict(value) for key, value in counts.items()}


class Scene:
    """The zones and lines of one source, and where each confirmed track is in them.

    Per-track state lives in rows of arrays (stages/tracking/track_rows.py), one column
    per zone or line, so a frame's tracks are handled by a few numpy operations and
    Python only loops over the tracks whose state changes.
    """

    def __init__(
        self,
        zones: list[ZoneConfig],
        lines: list[LineConfig],
        width: int,
        height: int,
        source: str,
        class_names: tuple[str, ...],
    ) -> None:
        self.source = source
        self.class_names = class_names
        self.zones, self.lines = list(zones), list(lines)
        self._zone_counts: list[Counts] = [{"inside": {}, "entered": {}, "exited": {}} for _ in zones]
        self._line_counts: list[Counts] = [{name: {} for name in line.directions} for line in lines]
        z, n = len(zones), len(lines)
        self._tracks = TrackRows({
            "since": ((z,), float, np.nan),  # stream time of the track's zone_enter; NaN: not inside
            "point": ((n, 2), float, np.nan),  # anchor at the track's last update; NaN: none yet
            "distance": ((n,), float, np.nan),  # signed distance of that anchor from the line
            "settled": ((n,), np.int8, 0),  # side taken: +1 right-hand, -1 left-hand, 0 none yet
            "touched": ((n,), bool, False),  # path touched the segment since the track last settled
            "pending": ((n,), float, np.nan),  # stream time it was first on the other side; NaN: not there
            "left": ((n, 2), float, np.nan),  # distances of the anchor and of the box centre when it last settled
            "whole": ((n,), bool, True),  # the box moved whole since then (CENTRE_SHARE), as of the last update
        })
        self._warned: set[str] = set()
        self.size = (0, 0)
        self.resize(width, height)

    def resize(self, width: int, height: int) -> None:
        """Frame size changed: recompute the pixel geometry. Counts and zone membership stay
        (the next update re-checks membership); each track's line state is forgotten, since
        its last anchor was in the old frame's pixels."""
        if (width, height) == self.size:
            return
        self.size = (width, height)
        self.zones_px = {z.name: to_pixels(z.points, z.coordinates == "normalized", width, height) for z in self.zones}
        self.lines_px = {n.name: to_pixels(n.points, n.coordinates == "normalized", width, height) for n in self.lines}
        self._zones_live = np.array([self._meets("zone", z.name, self.zones_px[z.name], True) for z in self.zones], bool)
        self._zone_set = PolygonSet(list(self.zones_px.values()))
        self._lines_live = np.array(
            [self._meets("line", n.name, self.lines_px[n.name], False) for n in self.lines], bool
        )
        ends = np.array([self.lines_px[n.name] for n in self.lines], float).reshape(-1, 2, 2)
        self._starts, self._ends = ends[:, 0], ends[:, 1]
        self._margins = np.array([n.margin_px for n in self.lines], float)
        self._holds = np.array([n.hold_s for n in self.lines], float)
        for name in ("point", "distance", "settled", "touched", "pending", "left", "whole"):
            self._tracks.reset(name)
        self._anchors = sorted({shape.anchor for shape in (*self.zones, *self.lines)})
        self._any_live = bool(self._zones_live.any() or self._lines_live.any())

    def _meets(self, kind: str, name: str, px: np.ndarray, closed: bool) -> bool:
        meets = shape_meets_box(px, (0.0, 0.0, *map(float, self.size)), closed)
        if not meets and name not in self._warned:
            self._warned.add(name)
            log.warning(
                "source %r: %s %r lies wholly outside the %dx%d frame; it never fires at this frame size",
                self.source, kind, name, *self.size,
            )
        return meets

    def update(self, active: list[TrackView], t: float, started: Sequence[TrackView] = ()) -> list[SceneEvent]:
        """Events of one frame at stream time t, from the confirmed tracks matched in it
        (`started`: those confirmed in this update, a part of `active`)."""
        if not active or not self._any_live:
            return []
        if self.lines and started:
            self._start_paths([track for track in started if track.first_box is not None])
        rows = self._tracks.rows([track.track_id for track in active])
        boxes = np.array([track.box for track in active], float)
        anchors = {kind: box_anchors(boxes, kind) for kind in self._anchors}
        events: list[SceneEvent] = []
        if self.zones:
            self._update_zones(active, rows, anchors, t, events)
        if self.lines:
            self._update_lines(active, rows, anchors, boxes, t, events)
        return events

    def _update_zones(
        self, active: list[TrackView], rows: np.ndarray, anchors: dict[str, np.ndarray], t: float, events: list[SceneEvent]
    ) -> None:
        since = self._tracks.columns["since"]
        was = ~np.isnan(since[rows])  # tracks x zones
        if len(anchors) == 1:  # every zone and line places tracks by the same anchor (the usual case)
            points = next(iter(anchors.values()))
        else:
            points = np.stack([anchors[zone.anchor] for zone in self.zones], axis=1)  # tracks x zones x 2
        inside = self._zone_set.contains(points) & self._zones_live
        for z, k in np.argwhere((inside != was).T).tolist():  # zone order, then track order
            track, row = active[k], rows[k]
            if inside[k, z]:
                since[row, z] = t
                self._count(self._zone_counts[z], track, ("inside", "entered"), +1)
                counts = _snapshot(self._zone_counts[z])
                events.append(SceneEvent("zone_enter", track, t, zone=self.zones[z].name, counts=counts))
            else:
                events.append(self._exit(z, track, row, t, t))

    def _exit(self, z: int, track: TrackView, row: int, t: float, until: float) -> SceneEvent:
        since = self._tracks.columns["since"]
        dwell = max(0.0, until - float(since[row, z]))
        since[row, z] = np.nan
        counts = self._zone_counts[z]
        self._count(counts, track, ("exited",), +1)
        self._count(counts, track, ("inside",), -1)
        return SceneEvent("zone_exit", track, t, zone=self.zones[z].name, dwell_s=dwell, counts=_snapshot(counts))

    def _start_paths(self, started: Sequence[TrackView]) -> None:
        """Line state of newly confirmed tracks as of their first box: the side it was on
        and the point their path starts from."""
        if not started:
            return
        rows = self._tracks.rows([track.track_id for track in started])
        first = np.array([track.first_box for track in started], float)
        points, distance, centre_distance = self._place(first, {kind: box_anchors(first, kind) for kind in self._anchors})
        columns = self._tracks.columns
        columns["settled"][rows] = self._sides(distance, first[:, 3] - first[:, 1])
        columns["distance"][rows] = distance
        columns["point"][rows] = points
        columns["left"][rows] = np.stack([distance, centre_distance], axis=-1)

    def _place(self, boxes: np.ndarray, anchors: dict[str, np.ndarray]) -> tuple[np.ndarray, ...]:
        """Where boxes are against every line: each line's anchor point (tracks x lines x
        2), its signed distance and the box centre's (tracks x lines)."""
        points = np.stack([anchors[line.anchor] for line in self.lines], axis=1)
        centres = anchors["center"] if "center" in anchors else box_anchors(boxes, "center")
        return (points, side_of_line(points, self._starts, self._ends),
                side_of_line(centres[:, None, :], self._starts, self._ends))

    def _sides(self, distance: np.ndarray, heights: np.ndarray) -> np.ndarray:
        """Side taken at each signed distance (tracks x lines): +1, -1, or 0 inside the band."""
        # the hysteresis band grows with the object: a detector's box edges jitter by a few
        # percent of the box, so a big object walking along a line must not count
        margins = np.maximum(self._margins, MARGIN_OF_HEIGHT * heights[:, None])  # tracks x lines
        return (np.sign(distance) * ((np.abs(distance) >= margins) & self._lines_live)).astype(np.int8)

    def _update_lines(
        self,
        active: list[TrackView],
        rows: np.ndarray,
        anchors: dict[str, np.ndarray],
        boxes: np.ndarray,
        t: float,
        events: list[SceneEvent],
    ) -> None:
        columns = self._tracks.columns
        points, distance, centre_distance = self._place(boxes, anchors)
        side = self._sides(distance, boxes[:, 3] - boxes[:, 1])
        # a path can touch a segment only where the distance to its line changed sign (or is 0):
        # test just those few (NaN, a track's first update, never compares true)
        touched = columns["touched"][rows]
        maybe = np.argwhere((columns["distance"][rows] * distance <= 0) & self._lines_live)
        if len(maybe):
            k, n = maybe[:, 0], maybe[:, 1]
            hit = segments_intersect(columns["point"][rows[k], n], points[k, n], self._starts[n], self._ends[n])
            touched[k[hit], n[hit]] = True
        settled = columns["settled"][rows]
        other = (side != 0) & (side == -settled)  # on the other side of the one it settled on
        back = (side != 0) & (side == settled)
        since = columns["pending"][rows]
        since = np.where(other & np.isnan(since), t, np.where(back, np.nan, since))
        moved = other & (t - since >= self._holds - HOLD_SLACK_S)  # held long enough: it settles there
        left = columns["left"][rows]  # tracks x lines x (anchor, centre)
        anchor_move = (distance - left[..., 0]) * side  # towards the new side: positive
        centre_move = (centre_distance - left[..., 1]) * side
        whole = ~(centre_move < CENTRE_SHARE * anchor_move)  # NaN (no start known) passes
        crossed = moved & touched & whole
        first = (side != 0) & (settled == 0)
        columns["settled"][rows] = np.where(first | moved, side, settled)
        settles = first | moved | back
        columns["touched"][rows] = touched & ~settles  # settling on a side starts a new path
        columns["pending"][rows] = np.where(moved, np.nan, since)
        columns["left"][rows] = np.where(settles[..., None], np.stack([distance, centre_distance], axis=-1), left)
        columns["whole"][rows] = whole
        columns["distance"][rows] = distance
        columns["point"][rows] = points
        for n, k in np.argwhere(crossed.T).tolist():  # line order, then track order
            events.append(self._cross(n, active[k], int(side[k, n]), t))

    def _cross(self, n: int, track: TrackView, side: int, t: float) -> SceneEvent:
        """`track` crossed line n onto `side` (+1: right-hand) at stream time t."""
        line = self.lines[n]
        direction = line.directions[0 if side > 0 else 1]
        self._count(self._line_counts[n], track, (direction,), +1)
        counts = _snapshot(self._line_counts[n])
        return SceneEvent("line_cross", track, t, line=line.name, direction=direction, counts=counts)

    def _count(self, counts: Counts, track: TrackView, keys: tuple[str, ...], step: int) -> None:
        name = self.class_names[track.class_id]
        for key in keys:
            counts[key][name] = counts[key].get(name, 0) + step

    def end_track(self, track: TrackView, t: float, final: bool = False) -> list[SceneEvent]:
        """A track ended at stream time t: zone_exit for each zone it is in (dwell up to its
        last_t, when it was last seen), and its line state is forgotten. `final`: the
        source ended with it, so a crossing still being held counts (line_cross)."""
        row = self._tracks.row_of(track.track_id)
        if row is None:
            return []
        columns = self._tracks.columns
        inside = np.flatnonzero(~np.isnan(columns["since"][row])).tolist()
        events = [self._exit(z, track, row, t, track.last_t) for z in inside]
        if final and self.lines:
            held = ~np.isnan(columns["pending"][row]) & columns["touched"][row] & columns["whole"][row]
            events += [self._cross(n, track, -int(columns["settled"][row, n]), t) for n in np.flatnonzero(held).tolist()]
        self._tracks.free(track.track_id)
        return events

    def counts(self) -> dict[str, Counts]:
        """Every zone's and line's counts by name (copies), for drawing and metrics."""
        shapes = [*zip(self.zones, self._zone_counts), *zip(self.lines, self._line_counts)]
        return {shape.name: _snapshot(counts) for shape, counts in shapes}
