"""The HTTP server of the control API: werkzeug's threaded WSGI server in one daemon thread,
and the `serve` hook that `run()` enters once its stage graph is built.

Rules:
- One server for everything: the API, the probes, /metrics and the live page.
- We bind the listening socket ourselves and hand it to werkzeug (`fd=`): werkzeug's own
  bind prints to stderr and calls sys.exit on a port in use; ours raises a ConfigError
  naming api.port. `port: 0` binds a free port; the log line and `Serving.port` tell which.
- Each request runs in its own daemon thread, tracked so that `close()` can join it. A
  request socket times out after REQUEST_TIMEOUT_S without progress, so a slow or stalled
  client cannot hold a thread for ever.
- Previews (MJPEG streams, single frames) get a stop event, set when their client hangs
  up (a watcher thread polls the sockets), when a single frame's deadline passes, or when
  the server closes: a viewer who left costs nothing within POLL_S.
- `close()` stops the previews, stops accepting, closes the listening socket, gives the
  requests in flight CLOSE_GRACE_S to finish, then shuts their sockets down (a client that
  sent half a request is not waited for), and joins every thread it started: after it
  returns no thread of the server runs and its port refuses connections (threads still
  stuck after CLOSE_TIMEOUT_S, e.g. inside a control call, are counted in a warning).
- werkzeug's own request log is off: the app logs one line per request, without query
  strings or headers.
"""

from __future__ import annotations

import logging
import os
import select
import socket
import threading
import time
import traceback
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

from werkzeug.serving import ThreadedWSGIServer, WSGIRequestHandler

from pipeline.api import page as live_page
from pipeline.api.app import ApiApp, Page
from pipeline.api.security import Scrubber, resolve_token
from pipeline.api.state import SavedSources
from pipeline.core.config import ApiConfig, SourceConfig
from pipeline.core.errors import ConfigError
from pipeline.core.metrics import Metrics
from pipeline.run.control import SourceControl

log = logging.getLogger("detstream")

REQUEST_TIMEOUT_S = 10.0
CLOSE_GRACE_S = 1.0
CLOSE_TIMEOUT_S = 5.0
POLL_S = 0.25


def _hung_up(sock: socket.socket) -> bool:
    """The client closed its end (or the request is over and the socket closed)."""
    try:
        if not select.select([sock], [], [], 0)[0]:
            return False
        return sock.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT) == b""
    except BlockingIOError:
        return False
    except (OSError, ValueError):  # reset, or closed (fileno -1)
        return True


class Previews:
    """Stop events of the open previews, set when the client hangs up, a deadline passes
    or the server closes (one watcher thread for all of them)."""

    def __init__(self) -> None:
        self._open: dict[threading.Event, tuple[socket.socket | None, float | None]] = {}
        self._lock = threading.Lock()
        self._halt = threading.Event()
        self._thread = threading.Thread(target=self._watch, name="detstream-api-previews", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def open(self, environ: dict[str, Any], deadline_s: float | None = None) -> threading.Event:
        stop = threading.Event()
        deadline = time.monotonic() + deadline_s if deadline_s is not None else None
        with self._lock:
            if self._halt.is_set():
                stop.set()
            else:
                self._open[stop] = (environ.get("werkzeug.socket"), deadline)
        return stop

    def done(self, stop: threading.Event) -> None:
        with self._lock:
            self._open.pop(stop, None)

    def count(self) -> int:
        with self._lock:
            return len(self._open)

    def close(self) -> None:
        self._halt.set()
        with self._lock:
            for stop in self._open:
                stop.set()
            self._open.clear()
        if self._thread.is_alive():
            self._thread.join()

    def _watch(self) -> None:
        while not self._halt.wait(POLL_S):
            now = time.monotonic()
            with self._lock:
                entries = list(self._open.items())
            for stop, (sock, deadline) in entries:
                if (deadline is not None and now >= deadline) or (sock is not None and _hung_up(sock)):
                    stop.set()
                    self.done(stop)


class _Handler(WSGIRequestHandler):
    protocol_version = "HTTP/1.1"
    timeout = REQUEST_TIMEOUT_S
    server: _Server

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        pass  # the app logs each request, without its query string

    def log(self, type: str, message: str, *args: Any) -> None:
        # werkzeug's own messages (bad request lines...) may quote the request: scrubbed
        level = logging.ERROR if type == "error" else logging.DEBUG
        log.log(level, "api: %s", self.server.scrub(message % args if args else message))


class _Server(ThreadedWSGIServer):
    """werkzeug's threaded server, keeping its request threads so that close() can join them."""

    def __init__(self, app: ApiApp, address: str, sock: socket.socket, scrub: Scrubber) -> None:
        self.scrub = scrub
        self.requests: dict[threading.Thread, socket.socket] = {}
        self._requests_lock = threading.Lock()
        super().__init__(address, sock.getsockname()[1], app, handler=_Handler, fd=sock.fileno())

    def process_request(self, request: Any, client_address: Any) -> None:
        thread = threading.Thread(
            target=self.process_request_thread, args=(request, client_address), name="detstream-api-request", daemon=True
        )
        with self._requests_lock:
            self.requests = {t: s for t, s in self.requests.items() if t.is_alive()}
            self.requests[thread] = request
        thread.start()

    def handle_error(self, request: Any, client_address: Any) -> None:
        log.error("api: request failed:\n%s", self.scrub(traceback.format_exc()))

    def running(self) -> dict[threading.Thread, socket.socket]:
        with self._requests_lock:
            return {t: s for t, s in self.requests.items() if t.is_alive()}


def _listen(address: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    try:
        return socket.create_server((address, port), family=family, backlog=128)
    except OSError as exc:
        raise ConfigError(f"api.port {port} on {address}: cannot serve the API: {exc.strerror or exc}", field="api.port") from exc


def _url(address: str, port: int) -> str:
    host = f"[{address}]" if ":" in address else address
    return f"http://{host}:{port}/"


class ApiServer:
    """The API of one run, served from a daemon thread until `close()`."""

    def __init__(self, app: ApiApp, config: ApiConfig, scrub: Scrubber, previews: Previews) -> None:
        self.previews = previews
        sock = _listen(config.address, config.port or 0)
        try:
            self._server = _Server(app, config.address, sock, scrub)
        finally:
            sock.close()  # werkzeug serves a duplicate of it
        self.port: int = int(self._server.server_address[1])
        self.url = _url(config.address, self.port)
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.2}, name="detstream-api", daemon=True
        )

    def start(self) -> None:
        self.previews.start()
        self._thread.start()

    def close(self) -> None:
        deadline = time.monotonic() + CLOSE_TIMEOUT_S
        self.previews.close()  # open streams end now
        if self._thread.is_alive():
            self._server.shutdown()
            self._thread.join()
        self._server.server_close()
        grace = time.monotonic() + CLOSE_GRACE_S
        for thread in self._server.running():
            thread.join(max(0.0, grace - time.monotonic()))
        for thread, sock in self._server.running().items():
            try:
                sock.shutdown(socket.SHUT_RDWR)  # a blocked read or write returns now
            except OSError:
                pass  # closed already
        for thread in self._server.running():
            thread.join(max(0.0, deadline - time.monotonic()))
        stuck = self._server.running()
        if stuck:
            log.warning("api: %d request threads still running after %.0f s", len(stuck), CLOSE_TIMEOUT_S)


class Serving:
    """The `serve` hook of `run()`: `serving(config.api, config.sources)(control, metrics)` is
    a context manager that serves the API while it is open.

    Made before the run starts, so a missing token off loopback fails before the model
    loads. `port` is the bound port once serving (port 0 picks a free one), and stays
    readable after the server closed."""

    def __init__(
        self,
        config: ApiConfig,
        sources: Sequence[SourceConfig] = (),
        page: Page = live_page,
        environ: Mapping[str, str] = os.environ,
    ) -> None:
        self.config = config
        self.sources = list(sources)
        self.page = page
        self.token = resolve_token(config, environ)
        self.server: ApiServer | None = None

    @property
    def port(self) -> int | None:
        return self.server.port if self.server else None

    @contextmanager
    def __call__(self, control: SourceControl, metrics: Metrics) -> Iterator[ApiServer]:
        scrub = Scrubber(self.token)
        previews = Previews()
        saved = SavedSources(self.config.state_file, self.sources) if self.config.state_file else None
        app = ApiApp(control, metrics, self.config, self.token, self.page, previews, saved)
        server = ApiServer(app, self.config, scrub, previews)
        server.start()
        self.server = server
        access = "bearer token required" if self.token else "no token: loopback only"
        log.info("control API and live page at %s (%s)", server.url, access)
        try:
            yield server
        finally:
            server.close()


def serving(
    config: ApiConfig, sources: Sequence[SourceConfig] = (), page: Page = live_page, environ: Mapping[str, str] = os.environ
) -> Serving:
    """The `serve` hook for `run(config, serve=...)`; `sources`: the run's sources, with their
    credentials, as the state file starts from them. A ConfigError now (not once the model
    has loaded) when the address needs a token and none is set."""
    return Serving(config, sources, page, environ)
