"""`webhook:https://HOST/PATH?options` sink: one signed HTTP POST per event.

Each record (an event of schema detstream.events/v1; with `detections=1` also each
frame's detstream.detections/v1 message) is POSTed alone, its JSON line as the body,
signed as pipeline/core/webhook_signature.py describes. Delivery is the push-sink
machinery of stages/sinks/publisher.py: the pipeline never waits, records wait in memory
and then in the spool while the receiver is down, and are retried with the shared
backoff. What the receiver's answer means:
- 2xx: delivered;
- 408, 429, 5xx, no answer (refused, reset, timed out, TLS failure): retried later,
  in order, nothing dropped;
- any other status (400, 401, 404, 3xx redirects, ...): refused for good; the record is
  dropped and counted as `rejected`, the first refusal of each status is logged (a
  receiver that rejects a record would reject it forever: retrying would stall
  every record behind it).
Rules: https verifies the server (system CAs, or `ssl_ca_certs`); plain http only to a
loopback host unless `allow_http=1`; a signing secret is required. Query parameters of
the URI are this sink's options, never sent to the receiver.
"""

from __future__ import annotations

import base64
import hashlib
import http.client
import ipaddress
import json
import logging
import os
import ssl
from dataclasses import dataclass, field
from urllib.parse import unquote, urlsplit

from pipeline.core.context import RunContext
from pipeline.core.errors import ConfigError
from pipeline.core.messages import Message
from pipeline.core.secrets import mask_url, redact
from pipeline.core.uri_options import TLS_OPTIONS, UriOptions, client_tls, parse_query
from pipeline.core.webhook_signature import signature_headers
from stages.sinks.publisher import DeliverySettings, Progress, PushSink, SendFailed, delivery_options, spool_folder

log = logging.getLogger("detstream")
PREFIX = "webhook:"
SECRET_ENV = "DETSTREAM_WEBHOOK_SECRET"
EVENT_ID_HEADER = "X-Detstream-Event-Id"
RETRIED_STATUSES = (408, 429)  # and every 5xx
SINK_OPTIONS = {
    "secret_env": f"environment variable holding the signing secret (default {SECRET_ENV})",
    "secret": "the signing secret itself (shown masked; prefer secret_env: URLs end up in shell history)",
    "timeout": "seconds to connect, and to wait for each answer (default 5)",
    "detections": "1: also POST every frame's detections message, not only events (default 0)",
    "allow_http": "1: allow http:// to a host that is not loopback (events travel unencrypted)",
    **TLS_OPTIONS,
    **delivery_options("records taken at once; each is still POSTed alone (default 16)",
                       "~/.cache/detstream/spool/webhook-HOST-PORT-HASH"),
}
MIN_BACKOFF_S = 0.1
MAX_BACKOFF_S = 5.0


@dataclass(frozen=True)
class WebhookTarget:
    """A parsed webhook URI; `display` is the URI with its credentials masked."""

    display: str
    https: bool
    host: str
    port: int
    path: str
    timeout_s: float
    detections: bool
    delivery: DeliverySettings
    secret: bytes = field(repr=False)
    headers: dict[str, str] = field(repr=False)  # sent with every POST (basic auth included)
    tls: ssl.SSLContext | None = field(repr=False)


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def parse_webhook_uri(uri: str, warn: bool = True) -> WebhookTarget:
    """Parse and check `uri` (no connection); ConfigError naming the problem, credentials masked."""
    display = mask_url(uri)

    def bad(reason: str) -> ConfigError:
        return ConfigError(f"sinks: bad webhook URI {display!r}: {reason}")

    url = uri.removeprefix(PREFIX)
    try:
        parts = urlsplit(url)
    except ValueError as exc:  # a bad IPv6 host: `[`
        raise bad(str(exc)) from None
    if parts.scheme not in ("https", "http") or not url.startswith(f"{parts.scheme}://"):
        raise bad("expected webhook:https://HOST[:PORT]/PATH[?option=value&...]")
    if not parts.hostname:
        raise bad("no host")
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        raise bad("the port is not a number from 1 to 65535") from None
    if parts.fragment:
        raise bad("a '#' part is not allowed (percent-encode '#' in a password as %23)")
    options = UriOptions(parse_query(parts.query, SINK_OPTIONS, bad), bad)
    https = parts.scheme == "https"
    if not https and not _loopback(parts.hostname) and not options.flag("allow_http"):
        raise bad("http:// would send events unencrypted over the network: use https://, or allow_http=1")
    if not https and any(name in options.values for name in TLS_OPTIONS):
        raise bad("ssl_* options need an https:// URL")
    if "secret" in options.values and "secret_env" in options.values:
        raise bad("give the secret or secret_env, not both")
    secret = options.get("secret")
    if secret is None:
        variable = options.get("secret_env") or SECRET_ENV
        secret = os.environ.get(variable)
        if not secret:
            raise bad(f"no signing secret: set the environment variable {variable} (or name another with secret_env=VAR)")
    headers = {"Content-Type": "application/json", "User-Agent": "detstream-webhook/1"}
    if parts.username is not None:
        credentials = f"{unquote(parts.username)}:{unquote(parts.password or '')}".encode()
        headers["Authorization"] = "Basic " + base64.b64encode(credentials).decode()
    # one spool per receiver: two webhooks on one host must not share (a spool has one owner)
    endpoint = f"{parts.scheme}://{parts.hostname}:{port}{parts.path}"
    default_spool = spool_folder(f"webhook-{parts.hostname}-{port}-{hashlib.sha256(endpoint.encode()).hexdigest()[:10]}")
    return WebhookTarget(
        display=display,
        https=https,
        host=parts.hostname,
        port=port,
        path=parts.path or "/",
        timeout_s=options.number("timeout", 5.0, minimum=0.001, integer=False),
        detections=options.flag("detections"),
        delivery=DeliverySettings.from_options(options, default_spool, 16),
        secret=secret.encode(),
        headers=headers,
        tls=client_tls(options, display, warn) if https else None,
    )


def _reason(exc: BaseException) -> str:
    """Foreign error text, safe to log."""
    if isinstance(exc, ssl.SSLCertVerificationError):
        return f"TLS verification failed: {exc.verify_message} (a private CA needs ssl_ca_certs=CA.pem)"
    return redact(str(exc)) or type(exc).__name__


class WebhookTransport:
    """POSTs records one by one over one kept-alive connection."""

    retry_s = (MIN_BACKOFF_S, MAX_BACKOFF_S)

    def __init__(self, target: WebhookTarget) -> None:
        self.target = target
        self._connection: http.client.HTTPConnection | None = None
        self._refusals_logged: set[int] = set()

    def send(self, lines: list[str], replay: bool) -> Progress:
        progress = Progress()
        for line in lines:
            try:
                event_id = str(json.loads(line)["event_id"])
            except (ValueError, KeyError, TypeError):
                progress.unreadable += 1
                continue
            try:
                status, reason, answer = self._post(line.encode(), event_id)
            except (OSError, http.client.HTTPException) as exc:  # ssl.SSLError is an OSError
                raise SendFailed(_reason(exc), progress) from exc
            if 200 <= status < 300:
                progress.delivered += 1
            elif status in RETRIED_STATUSES or status >= 500:
                raise SendFailed(f"HTTP {status} {reason}", progress)
            else:
                progress.rejected += 1
                self._refused(status, reason, answer, event_id)
        return progress

    def idle(self) -> bool:
        return False

    def close(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None

    def _post(self, body: bytes, event_id: str) -> tuple[int, str, bytes]:
        reused = self._connection is not None
        try:
            return self._exchange(body, event_id)
        except (ConnectionResetError, BrokenPipeError, ssl.SSLEOFError):  # http.client.RemoteDisconnected too
            if not reused:
                raise
            # a kept-alive connection the receiver closed while idle fails on first use:
            # that is no outage, so try once more at once on a new connection
            return self._exchange(body, event_id)

    def _exchange(self, body: bytes, event_id: str) -> tuple[int, str, bytes]:
        connection = self._connection or self._connect()
        headers = {**self.target.headers, EVENT_ID_HEADER: event_id, **signature_headers(self.target.secret, body)}
        try:
            connection.request("POST", self.target.path, body=body, headers=headers)
            response = connection.getresponse()
            answer = response.read()
        except BaseException:
            connection.close()
            self._connection = None
            raise
        self._connection = connection
        if response.will_close:
            self.close()
        return response.status, response.reason, answer

    def _connect(self) -> http.client.HTTPConnection:
        target = self.target
        if target.https:
            return http.client.HTTPSConnection(target.host, target.port, timeout=target.timeout_s, context=target.tls)
        return http.client.HTTPConnection(target.host, target.port, timeout=target.timeout_s)

    def _refused(self, status: int, reason: str, answer: bytes, event_id: str) -> None:
        if status in self._refusals_logged:
            return
        self._refusals_logged.add(status)
        text = redact(answer[:200].decode(errors="replace")).strip()
        log.warning("%s: the receiver refused record %s with HTTP %d %s%s; refused records are dropped and "
                    "counted as rejected (logged once per status)", self.target.display, event_id, status, reason,
                    f" ({text})" if text else "")


class WebhookSink(PushSink):
    FORM = "webhook:https://HOST/PATH?options"

    @classmethod
    def check(cls, uri: str) -> None:
        parse_webhook_uri(uri, warn=False)

    def __init__(self, uri: str, ctx: RunContext, queue_size: int, sources: list[str]) -> None:
        self.target = parse_webhook_uri(uri)
        super().__init__(uri, ctx, queue_size, self.target.display, WebhookTransport(self.target), self.target.delivery)

    def write(self, message: Message) -> None:
        if self.target.detections:
            self.offer(message.line)

    def stats(self) -> dict[str, int]:
        return {**super().stats(), "rejected": self.publisher.rejected}
