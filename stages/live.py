"""Live sources: RTSP / HTTP streams and capture devices that never "finish".

One thread per source opens the stream with an open timeout, reads until the stream
breaks, and reconnects with capped exponential backoff (forever by default). End of
stream means the camera or server went away, not that the work is done.

Stalls: FFmpeg's read timeout (PyAV's interrupt callback) unblocks a read that gets no
data, but measured here FFmpeg's RTSP demuxer reacts to the first timeout by flushing
the packets it still holds (one arrives after 1x the timeout) and fails only after 2x.
So a watchdog thread marks the source `stalled` once no *live* packet arrived for
`read_timeout_s` - a packet that only came out because the timeout fired is not a sign
of life. The read then fails by FFmpeg's timeout and we reconnect, or packets flow again
and the source is back to `streaming` without a reconnect.
"""

from __future__ import annotations

import threading
import time
from urllib.parse import urlsplit

import av

from pipeline.core.backoff import Backoff
from pipeline.core.config import SourceConfig
from pipeline.core.context import RunContext
from pipeline.core.errors import SourceError
from pipeline.core.health import State
from pipeline.core.queues import SourceMux
from pipeline.core.types import SourceEnd
from pipeline.core.secrets import mask_url, redact
from pipeline.core.urls import input_format
from stages.decode import Decoder
from stages.reader import PacketSink

WATCH_S = 0.05  # watchdog tick: stall detection is late by at most this much


def open_live(config: SourceConfig, name: str) -> av.container.InputContainer:
    """Open a live source within `open_timeout_s`, converting failures to a SourceError."""
    shown = mask_url(config.uri)
    options: dict[str, str] = {}
    if urlsplit(config.uri).scheme.lower() in ("rtsp", "rtsps"):
        options["rtsp_transport"] = config.rtsp_transport
    started = time.monotonic()
    try:
        container = av.open(
            config.uri,
            mode="r",
            format=input_format(config.uri),
            options=options,
            timeout=(config.open_timeout_s, config.read_timeout_s),
        )
    except av.FFmpegError as exc:
        # FFmpeg reports an interrupted open as "invalid data" or "exit requested": say what happened
        if time.monotonic() - started >= config.open_timeout_s * 0.95:
            reason = f"no answer within open_timeout_s ({config.open_timeout_s:g} s) from {shown}"
        else:
            reason = f"cannot open {shown}: {redact(exc.strerror or type(exc).__name__)}"
        raise SourceError(name, reason) from None  # the foreign error's text holds the raw URL
    except OSError as exc:
        raise SourceError(name, f"cannot open {shown}: {redact(exc.strerror or str(exc))}") from None
    if not container.streams.video:
        container.close()
        raise SourceError(name, f"no video stream in {shown}")
    return container


class LiveDecoder(Decoder):
    """Decoder of a live source: reconnects, stall watchdog, drop-oldest queue."""

    # once the run stops, nothing waits for this thread: it may sit in a network read
    detached_on_stop = True

    def __init__(
        self,
        config: SourceConfig,
        source: str,
        mux: SourceMux,
        ctx: RunContext,
        max_frames: int | None = None,
        first_seq: int = 0,
        packets: PacketSink | None = None,
    ) -> None:
        super().__init__(config, source, mux, ctx, max_frames, first_seq, packets)
        retry = config.reconnect
        self.backoff = Backoff(retry.initial_s, retry.max_s, retry.jitter)
        self._reading = False  # in a read (not opening, not waiting to retry)
        self._last_alive = 0.0  # monotonic time of the last packet that came in normally
        self._done = threading.Event()

    def work(self) -> None:
        watchdog = threading.Thread(target=self._watch, name=f"watch[{self.source}]", daemon=True)
        watchdog.start()
        try:
            self._connect_and_read()
        finally:
            self._done.set()
            self.health.finished("stopped")
            watchdog.join(2 * WATCH_S)  # a removed source leaves no thread behind

    def on_stop(self) -> None:
        # A live source has nothing to drain: let the rest of the pipeline finish now,
        # even if this thread is blocked in an open or a read for a few more seconds.
        self.stop.set()
        self.mux.close(self.source, SourceEnd(self.source))

    def _wait(self, delay: float) -> bool:
        """Sleep `delay` seconds unless asked to stop first; True if asked to stop."""
        deadline = time.monotonic() + delay
        while not self.stopping():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            self.stop.wait(min(remaining, 0.1))  # the run's stop is an event of its own: poll it
        return True

    def _connect_and_read(self) -> None:
        failed = 0  # consecutive failed attempts
        limit = self.config.reconnect.max_attempts
        while not self.stopping():
            try:
                container = open_live(self.config, self.source)
            except SourceError as exc:
                failed += 1
                if limit is not None and failed >= limit:
                    self.health.attempt_failed(exc.reason, failed, None)
                    self.ctx.source_failed(self.source, f"gave up after {failed} attempts: {exc.reason}")
                    return
                delay = self.backoff.delay(failed)
                self.health.attempt_failed(exc.reason, failed, delay)
                if self._wait(delay):
                    return
                continue
            failed = 0
            self.health.streaming()
            self.reader.session = self.health.session
            try:
                lost = self._read_live(container)
            finally:
                self._reading = False
                container.close()
            if lost is None:
                return  # asked to stop, or max_frames reached
            self.health.lost(lost)
            if self._wait(self.backoff.delay(1)):
                return

    def _read_live(self, container: av.container.InputContainer) -> str | None:
        """Read until the stream is lost (returns why) or the run stops (None)."""
        self._last_alive = time.monotonic()
        self._reading = True
        try:
            ended = self.reader.read(container, live=True, on_packet=self._packet_read)
        except SourceError as exc:
            if self.health.state is State.STALLED:
                return f"no packet for {self.config.read_timeout_s:g} s (read timeout)"
            return exc.reason
        return "end of stream (the server closed it)" if ended else None  # else: asked to stop, or max_frames

    def _packet_read(self, asked: float, arrived: float) -> None:
        # a read that lasts this long was ended by FFmpeg's timeout, not by new data
        if arrived - asked < 0.9 * self.config.read_timeout_s:
            self._last_alive = arrived
            if self.health.state is State.STALLED:
                self.health.streaming()  # packets flow again: recovered without reconnecting

    def _watch(self) -> None:
        """Mark the source stalled once no live packet came for `read_timeout_s`."""
        limit = self.config.read_timeout_s
        while not self._done.wait(WATCH_S):
            if self._reading and time.monotonic() - self._last_alive > limit:
                self.health.stalled(f"no packet for {limit:g} s")
