"""Per-source health: a small state machine plus the counters operators ask about.

    connecting --> streaming <--> stalled
        |            |              |
        v            v              v
      (retry)     reconnecting <----+      any --> failed | finished
        |            |
        +--> ... --> streaming (session + 1)

Every state change is logged with the counters, so a log alone tells the story of a
camera. The move to `finished` of a run's source is logged by the runner once the frames
in flight have drained (`log_finish`): its counters are then the summary's. Stages call the methods from several threads (decoder, stall watchdog, detect),
hence the lock.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter, deque
from enum import Enum
from typing import Any

log = logging.getLogger("detstream")


class State(str, Enum):
    CONNECTING = "connecting"  # first connection attempts
    STREAMING = "streaming"  # frames arrive
    STALLED = "stalled"  # connected, but no packet within the read timeout
    RECONNECTING = "reconnecting"  # the stream was lost; retrying with backoff
    FAILED = "failed"  # gave up (bad file, or live retries exhausted)
    FINISHED = "finished"  # end of a file, or the run stopped
    PAUSED = "paused"  # stopped through the control API, may be resumed


# Drop causes, as counted and reported.
QUEUE_FULL = "queue_full"  # a live source's queue was full: its oldest frame made room
TOO_OLD = "too_old"  # older than max_age_ms when it reached the detector
SHUTDOWN = "shutdown"  # decoded after the run stopped taking frames from the source

_LEVELS = {State.FAILED: logging.ERROR, State.STALLED: logging.WARNING, State.RECONNECTING: logging.WARNING}


class SourceHealth:
    """State and counters of one source. `received == processed + sum(dropped)` once drained."""

    def __init__(self, source: str, live: bool, finish_logged_later: bool = False) -> None:
        self.source = source
        self.live = live
        # True: `finished` only changes the state; `log_finish` logs it once the counts are final
        self._finish_logged_later = finish_logged_later
        self._finish_pending: tuple[State, str | None] | None = None
        self.state = State.CONNECTING
        self.session = 0  # connection number: 0 first, +1 per successful reconnect
        self.reconnects = 0
        self.failed_attempts = 0  # connection attempts that failed, over the whole run
        self.stalls = 0
        self.decode_errors = 0  # corrupt packets and frames, skipped
        self.received = 0  # frames that entered the pipeline
        self.processed = 0  # frames the detector ran on
        self.dropped: Counter[str] = Counter()
        self.max_age_ms = 0.0  # oldest frame the detector ran on
        self.last_error: str | None = None
        self.last_frame_ts: float | None = None  # unix time of the latest frame received
        self._recent: deque[float] = deque()  # monotonic times of the frames of the last second
        self._ever_streamed = False
        self._lock = threading.Lock()

    # --- state changes -------------------------------------------------------------

    def streaming(self) -> None:
        """Connected (or frames flow again after a stall)."""
        with self._lock:
            if self.state in (State.RECONNECTING, State.CONNECTING) and self._ever_streamed:
                self.reconnects += 1
                self.session += 1
            self._ever_streamed = True
            self._move(State.STREAMING, None)

    def stalled(self, reason: str) -> None:
        with self._lock:
            if self.state is State.STREAMING:
                self.stalls += 1
                self._move(State.STALLED, reason)

    def lost(self, reason: str) -> None:
        """The stream ended or broke; a live source will retry."""
        with self._lock:
            self.last_error = reason
            self._move(State.RECONNECTING, reason)

    def attempt_failed(self, reason: str, attempt: int, retry_in_s: float | None) -> None:
        """A connection attempt failed: one clear line per attempt (None: no retry left)."""
        with self._lock:
            self.failed_attempts += 1
            self.last_error = reason
        then = f"retrying in {retry_in_s:.1f} s" if retry_in_s is not None else "no attempts left"
        log.warning("source %r: attempt %d failed: %s; %s", self.source, attempt, reason, then)

    def failed(self, reason: str) -> None:
        with self._lock:
            self.last_error = reason
            self._move(State.FAILED, reason)

    def paused(self) -> None:
        with self._lock:
            self._move(State.PAUSED, "paused through the control API")

    def resumed(self) -> None:
        """About to read again after a pause: connecting, and the next stream is a new session."""
        with self._lock:
            self._move(State.CONNECTING, "resumed")

    def finished(self, reason: str | None = None) -> None:
        with self._lock:
            if self.state in (State.FAILED, State.FINISHED, State.PAUSED):
                return
            if self._finish_logged_later:
                self._finish_pending = (self.state, reason)
                self.state = State.FINISHED
            else:
                self._move(State.FINISHED, reason)

    def log_finish(self) -> None:
        """Log the move to `finished` held back by `finished` (once the frames in flight drained)."""
        with self._lock:
            self._finish_logged_later = False  # a reader that ends later still says so
            if self._finish_pending is not None:
                previous, reason = self._finish_pending
                self._finish_pending = None
                self._log(previous, State.FINISHED, reason)

    @property
    def never_connected(self) -> bool:
        """A live source whose every connection attempt failed."""
        return self.live and not self._ever_streamed

    def _move(self, state: State, reason: str | None) -> None:
        if state is self.state:
            return
        previous, self.state = self.state, state
        self._log(previous, state, reason)

    def _log(self, previous: State, state: State, reason: str | None) -> None:
        detail = f": {reason}" if reason else ""
        log.log(
            _LEVELS.get(state, logging.INFO),
            "source %r: %s -> %s%s (%s)", self.source, previous.value, state.value, detail, self._counters_text(),
        )

    # --- counters --------------------------------------------------------------------

    def count_received(self) -> None:
        now = time.monotonic()
        with self._lock:
            self.received += 1
            self.last_frame_ts = time.time()
            self._recent.append(now)
            while self._recent[0] < now - 1.0:
                self._recent.popleft()

    def fps(self) -> float:
        """Frames received in the last second."""
        now = time.monotonic()
        with self._lock:
            return float(sum(1 for t in self._recent if t >= now - 1.0))

    def count_processed(self, age_ms: float) -> None:
        with self._lock:
            self.processed += 1
            self.max_age_ms = max(self.max_age_ms, age_ms)

    def count_dropped(self, cause: str) -> None:
        with self._lock:
            self.dropped[cause] += 1

    def count_decode_errors(self, n: int = 1) -> None:
        with self._lock:
            self.decode_errors += n

    def snapshot(self) -> dict[str, Any]:
        """Plain values for metrics and the run summary."""
        with self._lock:
            return {
                "state": self.state.value,
                "live": self.live,
                "ever_connected": self._ever_streamed,
                "session": self.session,
                "received": self.received,
                "processed": self.processed,
                "dropped": dict(self.dropped),
                "reconnects": self.reconnects,
                "failed_attempts": self.failed_attempts,
                "stalls": self.stalls,
                "decode_errors": self.decode_errors,
                "max_age_ms": round(self.max_age_ms, 1),
                "last_error": self.last_error,
                "last_frame_ts": self.last_frame_ts,
            }

    def _counters_text(self) -> str:
        dropped = ", ".join(f"{k} {v}" for k, v in sorted(self.dropped.items())) or "0"
        return (
            f"session {self.session}, received {self.received}, processed {self.processed}, dropped {dropped}, "
            f"reconnects {self.reconnects}, stalls {self.stalls}, decode errors {self.decode_errors}"
        )
