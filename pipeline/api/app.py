"""The control API as a WSGI app: routes, JSON bodies and status codes over a SourceControl.

    GET    /                            the live page (page.index_html)
    GET    /health/live                 {"live": true}; 503 once the pipeline has stopped
    GET    /health/ready                control.ready(): 200 when ready, else 503
    GET    /sources                     control.sources()
    POST   /sources                     control.add(body): 201 and the source
    GET    /sources/<name>              control.source(name)
    PATCH  /sources/<name>              control.update(name, body): keys of UPDATABLE only
    DELETE /sources/<name>              control.remove(name): 204
    GET    /sources/<name>/frame.jpg    one annotated JPEG
    GET    /sources/<name>/stream.mjpg  annotated JPEGs, multipart/x-mixed-replace
    GET    /config                      control.config()
    GET    /metrics                     Prometheus text from the run's MetricsCollector

Rules:
- Every error is JSON {"error": message, "field": key (when one is at fault)}: 400 body
  not JSON or not an object, 401 token missing or wrong, 403 non-loopback Host without a
  token, 404 no such route or source, 405 method, 409 source exists, 413 body over
  api.max_body_bytes (by Content-Length, and by the bytes actually read), 415 POST/PATCH
  not application/json, 422 invalid settings (ConfigError: its `field`), 503 the
  pipeline is still starting (NotReady: a change before the model has loaded; with
  Retry-After) or no frame came in time.
- Checks run in that order: route, host and token, content type, size, JSON, then the
  control validates; nothing reaches the control before the request passed them all.
- Changes (POST, PATCH, DELETE) run one at a time, and each that succeeds is saved to
  api.state_file (pipeline/api/state.py).
- Messages pass through the Scrubber (credentials and the token masked), and so does every
  JSON body: the control masks already, this is the last line of defence.
- One log line per request: client, method, path without the query string, status, time;
  INFO for changes and refusals (401, 403), DEBUG for reads. Headers are never logged.
"""

from __future__ import annotations

import json
import logging
import threading
import time
import traceback
from collections.abc import Callable, Iterator
from typing import Any, BinaryIO, NoReturn, Protocol
from urllib.parse import quote

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from werkzeug.exceptions import HTTPException, MethodNotAllowed
from werkzeug.routing import Map, Rule
from werkzeug.wrappers import Request, Response

from pipeline.api.security import Auth, Scrubber
from pipeline.api.state import SavedSources
from pipeline.core.config import ApiConfig
from pipeline.core.errors import ConfigError, SourceExists, UnknownSource
from pipeline.core.metrics import Metrics
from pipeline.run.control import UPDATABLE, SourceControl
from pipeline.run.metrics_server import MetricsCollector
from pipeline.run.sources import NotReady

log = logging.getLogger("detstream")

CHANGES = ("POST", "PATCH", "DELETE")
OPEN = ("live", "ready")  # the probes: answered without the token (ready: status only)
IMAGES = ("frame", "stream")  # <img> URLs: the token may come as ?token=
FRAME_WAIT_S = 5.0  # frame.jpg: longest wait for the source's next frame
RETRY_AFTER_S = 2  # a change refused while the model loads: try again then
BOUNDARY = "frame"
JSON_TYPES = ("application/json",)

ROUTES = Map([
    Rule("/", endpoint="index", methods=["GET"]),
    Rule("/health/live", endpoint="live", methods=["GET"]),
    Rule("/health/ready", endpoint="ready", methods=["GET"]),
    Rule("/sources", endpoint="sources", methods=["GET"]),
    Rule("/sources", endpoint="add", methods=["POST"]),
    Rule("/sources/<name>", endpoint="source", methods=["GET"]),
    Rule("/sources/<name>", endpoint="update", methods=["PATCH"]),
    Rule("/sources/<name>", endpoint="remove", methods=["DELETE"]),
    Rule("/sources/<name>/frame.jpg", endpoint="frame", methods=["GET"]),
    Rule("/sources/<name>/stream.mjpg", endpoint="stream", methods=["GET"]),
    Rule("/config", endpoint="config", methods=["GET"]),
    Rule("/metrics", endpoint="metrics", methods=["GET"]),
])


class Page(Protocol):
    """The live page's two functions (pipeline/api/page.py; tests pass their own)."""

    def index_html(self) -> str: ...

    def jpeg_frames(self, control: SourceControl, name: str, fps: float, stop: threading.Event) -> Iterator[bytes]: ...


class Previews(Protocol):
    """Stop events of open previews: set when the client goes, a deadline passes or the server closes."""

    def open(self, environ: dict[str, Any], deadline_s: float | None = None) -> threading.Event: ...

    def done(self, stop: threading.Event) -> None: ...


class Failure(Exception):
    """A request refused with `status`: the JSON error's message and field."""

    def __init__(self, status: int, message: str, field: str | None = None, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.field = field
        self.headers = headers or {}


def _fail(status: int, message: str, field: str | None = None) -> NoReturn:
    raise Failure(status, message, field)


def _read_at_most(stream: BinaryIO, limit: int) -> bytes:
    """Up to limit + 1 bytes: one more than allowed is enough to know the body is too large."""
    data = b""
    while len(data) <= limit:
        chunk = stream.read(limit + 1 - len(data))
        if not chunk:
            break
        data += chunk
    return data


def _printable(text: str) -> str:
    # a decoded path may hold newlines: one request must stay one log line
    return "".join(c if c.isprintable() else "?" for c in text)


class ApiApp:
    """The WSGI application of one run's control API."""

    def __init__(
        self,
        control: SourceControl,
        metrics: Metrics,
        config: ApiConfig,
        token: str | None,
        page: Page,
        previews: Previews,
        saved: SavedSources | None = None,
    ) -> None:
        self.control = control
        self.config = config
        self.auth = Auth(token)
        self.scrub = Scrubber(token)
        self.page = page
        self.previews = previews
        self.saved = saved
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(MetricsCollector(metrics))
        self._changes = threading.Lock()
        self._handlers: dict[str, Callable[..., Response]] = {
            "index": self.index, "live": self.live, "ready": self.ready, "sources": self.sources,
            "add": self.add, "source": self.source, "update": self.update, "remove": self.remove,
            "frame": self.frame, "stream": self.stream, "config": self.effective_config, "metrics": self.metrics,
        }

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        request = Request(environ)
        started = time.monotonic()
        response = self.respond(request)
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        level = logging.INFO if request.method in CHANGES or response.status_code in (401, 403) else logging.DEBUG
        log.log(
            level, "api: %s %s %s %d (%.1f ms)", request.remote_addr, request.method,
            _printable(self.scrub(request.path)), response.status_code, (time.monotonic() - started) * 1000,
        )
        return response(environ, start_response)

    def respond(self, request: Request) -> Response:
        adapter = ROUTES.bind_to_environ(request.environ)
        try:
            endpoint, args = adapter.match()
            routing: HTTPException | None = None
        except HTTPException as exc:  # NotFound, MethodNotAllowed
            endpoint, args, routing = "", {}, exc
        if endpoint not in OPEN:
            refused = self.access(request, endpoint)
            if refused is not None:
                return refused
        try:
            if routing is not None:
                self._routing_failure(request, routing)
            return self._handlers[endpoint](request, **args)
        except Failure as exc:
            return self.error(exc.status, exc.message, exc.field, exc.headers)
        except ConfigError as exc:
            return self.error(422, str(exc), exc.field)
        except UnknownSource as exc:
            return self.error(404, str(exc) or f"no source {args.get('name')!r}")
        except SourceExists as exc:
            return self.error(409, str(exc) or f"a source {args.get('name')!r} exists already")
        except NotReady as exc:
            return self.error(503, str(exc), headers={"Retry-After": str(RETRY_AFTER_S)})
        except Exception as exc:  # a bug, or a control that failed: logged in full, answered in one line
            text = self.scrub("".join(traceback.format_exception(exc)))
            log.error("api: %s %s failed:\n%s", request.method, _printable(self.scrub(request.path)), text)
            return self.error(500, f"internal error: {self.scrub(str(exc)) or type(exc).__name__}")

    # --- responses ------------------------------------------------------------------

    def json(self, body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
        return Response(self.scrub(json.dumps(body)), status=status, mimetype="application/json", headers=headers)

    def error(self, status: int, message: str, field: str | None = None, headers: dict[str, str] | None = None) -> Response:
        body: dict[str, Any] = {"error": self.scrub(message)}
        if field is not None:
            body["field"] = self.scrub(field)
        return self.json(body, status, headers)

    # --- checks ---------------------------------------------------------------------

    def access(self, request: Request, endpoint: str) -> Response | None:
        """None when the request may go on; else its refusal."""
        if not self.auth.host_allowed(request):
            return self.error(403, f"Host {request.host!r} is not a loopback name: set api.token to serve other host names")
        if not self.auth.allows(request, query=endpoint in IMAGES):
            return self.error(401, "missing or wrong token: send Authorization: Bearer TOKEN",
                              headers={"WWW-Authenticate": "Bearer"})
        return None

    def _routing_failure(self, request: Request, exc: HTTPException) -> NoReturn:
        if isinstance(exc, MethodNotAllowed):
            allowed = sorted(set(exc.valid_methods or ()))
            raise Failure(405, f"{request.method} is not allowed on {request.path} (allowed: {', '.join(allowed)})",
                          headers={"Allow": ", ".join(allowed)})
        if exc.code == 404:
            _fail(404, f"no such endpoint: {request.method} {request.path}")
        _fail(exc.code or 400, exc.description or exc.name)

    def body(self, request: Request) -> dict[str, Any]:
        """The JSON object of a POST or PATCH, within the size limit."""
        if request.mimetype not in JSON_TYPES and not request.mimetype.endswith("+json"):
            _fail(415, f"Content-Type must be application/json, not {request.mimetype or 'none'!r}")
        limit = self.config.max_body_bytes
        if request.content_length is not None and request.content_length > limit:
            _fail(413, f"body of {request.content_length} bytes: at most {limit} (api.max_body_bytes)")
        data = _read_at_most(request.stream, limit)
        if len(data) > limit:
            _fail(413, f"body over {limit} bytes (api.max_body_bytes)")
        try:
            value = json.loads(data.decode("utf-8"))  # JSON over HTTP is UTF-8 (RFC 8259), not sniffed
        except UnicodeDecodeError:
            _fail(400, "body is not UTF-8 text")
        except json.JSONDecodeError as exc:
            _fail(400, f"body is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}")
        if not isinstance(value, dict):
            _fail(400, f"body must be a JSON object, not {type(value).__name__}")
        return value

    # --- endpoints ------------------------------------------------------------------

    def index(self, request: Request) -> Response:
        return Response(self.page.index_html(), mimetype="text/html",
                        headers={"X-Frame-Options": "DENY", "Referrer-Policy": "no-referrer", "Cache-Control": "no-store"})

    def live(self, request: Request) -> Response:
        live = bool(self.control.live())
        return self.json({"live": live}, 200 if live else 503)

    def ready(self, request: Request) -> Response:
        state = self.control.ready()
        ready = bool(state.get("ready"))
        body = state if self.auth.allows(request) else {"ready": ready}
        return self.json(body, 200 if ready else 503)

    def sources(self, request: Request) -> Response:
        return self.json(self.control.sources())

    def source(self, request: Request, name: str) -> Response:
        return self.json(self.control.source(name))

    def add(self, request: Request) -> Response:
        settings = self.body(request)
        with self._changes:
            added = self.control.add(settings)
            name = str(added.get("name", settings.get("name", "")))
            if self.saved:
                self.saved.added(name, settings)
        return self.json(added, 201, {"Location": f"/sources/{quote(name, safe='')}"})

    def update(self, request: Request, name: str) -> Response:
        changes = self.body(request)
        for key in changes:
            if key not in UPDATABLE:
                _fail(422, f"PATCH /sources/{name}: {key!r} cannot be changed on a running source "
                           f"(allowed: {', '.join(UPDATABLE)})", key)
        if not changes:
            _fail(422, f"PATCH /sources/{name}: nothing to change (allowed: {', '.join(UPDATABLE)})")
        with self._changes:
            updated = self.control.update(name, changes)
            if self.saved:
                self.saved.updated(name, changes)
        return self.json(updated)

    def remove(self, request: Request, name: str) -> Response:
        with self._changes:
            self.control.remove(name)
            if self.saved:
                self.saved.removed(name)
        return Response(status=204)

    def effective_config(self, request: Request) -> Response:
        return self.json(self.control.config())

    def metrics(self, request: Request) -> Response:
        return Response(generate_latest(self.registry), content_type=CONTENT_TYPE_LATEST)

    def frame(self, request: Request, name: str) -> Response:
        self.control.source(name)  # an unknown name is a 404 now, not an empty image
        stop = self.previews.open(request.environ, FRAME_WAIT_S)
        frames = self.page.jpeg_frames(self.control, name, self.config.preview_fps, stop)
        try:
            jpeg = next(iter(frames), None)
        finally:
            stop.set()
            getattr(frames, "close", lambda: None)()
            self.previews.done(stop)
        if jpeg is None:
            _fail(503, f"no frame from source {name!r} within {FRAME_WAIT_S:g} s")
        return Response(jpeg, mimetype="image/jpeg", headers={"Cache-Control": "no-store"})

    def stream(self, request: Request, name: str) -> Response:
        self.control.source(name)
        stop = self.previews.open(request.environ)
        frames = self.page.jpeg_frames(self.control, name, self.config.preview_fps, stop)

        def parts() -> Iterator[bytes]:
            # ends when the frames end; closed early (GeneratorExit) when the client has gone
            try:
                for jpeg in frames:
                    head = f"--{BOUNDARY}\r\nContent-Type: image/jpeg\r\nContent-Length: {len(jpeg)}\r\n\r\n"
                    yield head.encode() + jpeg + b"\r\n"
            finally:
                stop.set()
                getattr(frames, "close", lambda: None)()
                self.previews.done(stop)

        return Response(parts(), mimetype=f"multipart/x-mixed-replace; boundary={BOUNDARY}",
                        headers={"Cache-Control": "no-store"})
