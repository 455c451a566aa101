"""`detstream sources list|add|remove|pause|resume --api URL`: a thin client of the control API.

Rules:
- Light: the standard library (urllib), rich and PyYAML only, so it starts in a fraction
  of a second (tests/pipeline/test_cli_startup.py).
- The token comes from `--token`, else $DETSTREAM_API_TOKEN, and goes only into the
  Authorization header.
- Every failure is one line and exit code 2: an HTTP error prints the API's JSON error
  (and the field at fault), a server that cannot be reached names the URL (masked).
- `pause` / `resume` are `PATCH {"enabled": false | true}`.
- `list` shows, per source: name, state, fps, frames (processed by the detector, else
  received) and the age of its last frame, from the keys `name`, `state`, `fps` and
  `counters` {`processed`, `received`, `last_frame_ts` (Unix seconds)} of GET /sources
  (pipeline/run/sources.py); a counter on the source itself is read as well.
"""

from __future__ import annotations

import argparse
import json
import os
import time
import urllib.error
import urllib.request
from typing import Any
from urllib.parse import quote, urlsplit

import yaml
from rich.markup import escape
from rich.table import Table

from pipeline.core.console import make_console
from pipeline.core.errors import ApiError, ConfigError
from pipeline.core.secrets import mask_url

TOKEN_ENV = "DETSTREAM_API_TOKEN"  # as pipeline/api/security.py (not imported: it pulls werkzeug)
TIMEOUT_S = 30.0  # a removal waits for the source's frames to drain


class Client:
    """JSON requests to the API at `url`."""

    def __init__(self, url: str, token: str | None) -> None:
        if not url.startswith(("http://", "https://")):
            raise ConfigError(f"--api {mask_url(url)}: expected http://HOST:PORT")
        if "@" in urlsplit(url).netloc:
            raise ConfigError(f"--api {mask_url(url)}: no credentials in the URL; give --token or ${TOKEN_ENV}")
        self.url = url.rstrip("/")
        self.token = token

    def call(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        headers = {"Accept": "application/json"}
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        request = urllib.request.Request(self.url + path, data=data, method=method, headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=TIMEOUT_S) as response:
                text = response.read()
        except urllib.error.HTTPError as exc:
            raise ApiError(f"{method} {path}: {exc.code} {_error_text(exc)}") from None
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise ApiError(f"cannot connect to the API at {mask_url(self.url)}: {reason}") from None
        try:
            return json.loads(text) if text else None
        except ValueError:
            raise ApiError(f"{method} {path}: the answer of {mask_url(self.url)} is not JSON (not a detstream API?)") from None


def _error_text(exc: urllib.error.HTTPError) -> str:
    try:
        error = json.loads(exc.read())
        message = str(error["error"])
        return message + (f" (field: {error['field']})" if error.get("field") else "")
    except (ValueError, KeyError, TypeError):
        return str(exc.reason)


def _path(name: str) -> str:
    return f"/sources/{quote(name, safe='')}"


def _counter(source: dict[str, Any], *keys: str) -> Any:
    """The first of `keys` found in the source's counters or on the source itself."""
    for place in (source.get("counters") or {}, source):
        for key in keys:
            if place.get(key) is not None:
                return place[key]
    return None


def _age(last_frame_ts: Any) -> str:
    if not isinstance(last_frame_ts, (int, float)):
        return "-"
    return f"{max(0.0, time.time() - last_frame_ts):.1f} s"


def cmd_list(client: Client, args: argparse.Namespace) -> int:
    sources = client.call("GET", "/sources")
    table = Table(title=f"sources at {mask_url(client.url)}", title_justify="left")
    for column in ("name", "state", "fps", "frames", "last frame"):
        table.add_column(column, justify="left" if column in ("name", "state") else "right")
    for source in sources:
        fps = source.get("fps")
        table.add_row(
            escape(str(source.get("name"))), escape(str(source.get("state", "-"))),
            f"{fps:.1f}" if isinstance(fps, (int, float)) else "-", str(_counter(source, "processed", "received") or 0),
            _age(_counter(source, "last_frame_ts")),
        )
    make_console().print(table)
    return 0


def _set_value(text: str) -> tuple[list[str], Any]:
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise ConfigError(f"--set {text}: expected KEY=VALUE, e.g. --set max_fps=5")
    return key.split("."), yaml.safe_load(value) if value else ""


def source_entry(args: argparse.Namespace) -> dict[str, Any]:
    """The source of `add`: --json, then --uri, --name and each --set KEY=VALUE (dotted keys nest)."""
    entry: dict[str, Any] = {}
    if args.json:
        try:
            entry = json.loads(args.json)
        except ValueError as exc:
            raise ConfigError(f"--json: not valid JSON: {exc}") from None
        if not isinstance(entry, dict):
            raise ConfigError("--json: expected a JSON object")
    if args.uri:
        entry["uri"] = args.uri
    if args.name:
        entry["name"] = args.name
    for item in args.set or []:
        keys, value = _set_value(item)
        target = entry
        for key in keys[:-1]:
            target = target.setdefault(key, {})
        target[keys[-1]] = value
    return entry


def cmd_add(client: Client, args: argparse.Namespace) -> int:
    source = client.call("POST", "/sources", source_entry(args))
    make_console().print(f"added {escape(str(source.get('name')))} ({escape(str(source.get('state', '-')))})", highlight=False)
    return 0


def cmd_remove(client: Client, args: argparse.Namespace) -> int:
    client.call("DELETE", _path(args.name))
    make_console().print(f"removed {escape(args.name)}", highlight=False)
    return 0


def cmd_pause(client: Client, args: argparse.Namespace) -> int:
    client.call("PATCH", _path(args.name), {"enabled": False})
    make_console().print(f"paused {escape(args.name)}", highlight=False)
    return 0


def cmd_resume(client: Client, args: argparse.Namespace) -> int:
    client.call("PATCH", _path(args.name), {"enabled": True})
    make_console().print(f"resumed {escape(args.name)}", highlight=False)
    return 0


def cmd_sources(args: argparse.Namespace) -> int:
    client = Client(args.api, args.token or os.environ.get(TOKEN_ENV))
    return int(args.action(client, args))


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("sources", help="list, add, remove, pause or resume the sources of a running `run --api-port`")
    actions = p.add_subparsers(dest="sources_command", required=True)
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--api", required=True, metavar="URL", help="the run's API, e.g. http://127.0.0.1:8080")
    common.add_argument("--token", metavar="TOKEN", help=f"bearer token (default: ${TOKEN_ENV})")
    actions.add_parser("list", parents=[common], help="each source's state, fps, frames and last frame").set_defaults(action=cmd_list)
    add = actions.add_parser("add", parents=[common], help="start a source (settings as in a config's sources list)")
    add.add_argument("--uri", help="file path or URL FFmpeg can open")
    add.add_argument("--name", help="source name (default: derived from the uri)")
    add.add_argument("--set", action="append", metavar="KEY=VALUE", help="any source setting, e.g. max_fps=5 or reconnect.max_s=10; repeatable")
    add.add_argument("--json", metavar="OBJECT", help="the whole source as a JSON object; --uri, --name and --set override it")
    add.set_defaults(action=cmd_add)
    for name, action, text in (
        ("remove", cmd_remove, "stop a source and free its resources"),
        ("pause", cmd_pause, "stop reading a source, keep its settings (enabled: false)"),
        ("resume", cmd_resume, "read a paused source again (enabled: true)"),
    ):
        sub = actions.add_parser(name, parents=[common], help=text)
        sub.add_argument("name", help="source name")
        sub.set_defaults(action=action)
    p.set_defaults(func=cmd_sources)
