"""Per-track state as rows of numpy arrays, so a frame's tracks are read and written at once.

Rules: a track gets a row the first time it is asked for and keeps it until `free`;
a freed row is reset to the columns' fill values and reused. Columns grow by doubling
(row numbers stay valid, but the arrays are new: read `columns` after `rows`).
"""

from __future__ import annotations

from typing import Any

import numpy as np

Column = tuple[tuple[int, ...], Any, Any]  # shape of one row's cell, dtype, fill value


class TrackRows:
    def __init__(self, columns: dict[str, Column], capacity: int = 64) -> None:
        self._specs = columns
        self._row: dict[int, int] = {}  # track id -> row
        self._free = list(range(capacity - 1, -1, -1))  # popped from the end: lowest row first
        self.columns = {name: np.full((capacity, *cell), fill, dtype) for name, (cell, dtype, fill) in columns.items()}

    def rows(self, track_ids: list[int]) -> np.ndarray:
        """The rows of these tracks, giving new tracks a row."""
        found = [self._row.get(track_id, -1) for track_id in track_ids]
        if -1 in found:
            for k, row in enumerate(found):
                if row == -1:
                    found[k] = self._row[track_ids[k]] = self._take()
        return np.array(found, np.intp)

    def row_of(self, track_id: int) -> int | None:
        return self._row.get(track_id)

    def free(self, track_id: int) -> None:
        row = self._row.pop(track_id, None)
        if row is not None:
            for name, (_, _, fill) in self._specs.items():
                self.columns[name][row] = fill
            self._free.append(row)

    def reset(self, name: str) -> None:
        """Every row of one column back to its fill value."""
        self.columns[name][...] = self._specs[name][2]

    def _take(self) -> int:
        if not self._free:
            capacity = len(next(iter(self.columns.values())))
            for name, (cell, dtype, fill) in self._specs.items():
                grown = np.full((capacity, *cell), fill, dtype)
                self.columns[name] = np.concatenate((self.columns[name], grown))
            self._free = list(range(2 * capacity - 1, capacity - 1, -1))
        return self._free.pop()
