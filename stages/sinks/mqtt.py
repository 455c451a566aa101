"""`mqtt://[user:password@]host[:port]/topic/prefix` (and `mqtts://`) sink, with paho-mqtt.

Topics (PREFIX is the URI's path, `detstream` if empty; SOURCE is the source id with
`/ + #` replaced by `_`, so one source is always one topic level):
- `PREFIX/SOURCE/TYPE`: each event (schema detstream.events/v1; TYPE is its `type`);
- `PREFIX/SOURCE/detections`: each frame's message, only with `detections=1`;
- `PREFIX/SOURCE/state`: retained, the source's health (schema detstream.state/v1: the
  state of pipeline/core/health.py and its counters), published when the state or
  session changes, every `state_s` seconds, on every (re)connection, and last at the
  end of the run.
Events and detections go through the push-sink machinery (stages/sinks/publisher.py):
never blocking the pipeline, spooled while the broker is away, retried with the shared
backoff. A record counts as delivered only once the broker acknowledged it (PUBACK at
QoS 1, PUBCOMP at QoS 2), so a broker killed mid-run loses nothing: what it did not
acknowledge is sent again after the reconnection (with the same event_id). QoS 0 has no
acknowledgement: at most once. The state is not spooled: it is a current value, and
the newest one is published again after every reconnection.

The publisher thread drives paho's network loop itself (`Client.loop`), with a new
client per connection, so reconnecting follows the shared backoff and no message of a
dead connection is resent behind our back.
"""

from __future__ import annotations

import json
import logging
import os
import re
import secrets
import ssl
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from urllib.parse import unquote, urlsplit

import paho.mqtt.client as paho

from pipeline.core.context import RunContext
from pipeline.core.errors import ConfigError
from pipeline.core.events import EVENTS_SCHEMA
from pipeline.core.health import SourceHealth
from pipeline.core.messages import SCHEMA, Message
from pipeline.core.secrets import mask_url, redact
from pipeline.core.uri_options import TLS_OPTIONS, UriOptions, client_tls, parse_query
from stages.sinks.publisher import DeliverySettings, Progress, PushSink, SendFailed, delivery_options, spool_folder

log = logging.getLogger("detstream")
STATE_SCHEMA = "detstream.state/v1"
DEFAULT_PREFIX = "detstream"
SINK_OPTIONS = {
    "qos": "0, 1 or 2 for events and detections (default 1; 0 is at most once: no acknowledgement to wait for)",
    "detections": "1: also publish every frame's detections message to PREFIX/SOURCE/detections (default 0)",
    "state_s": "seconds between refreshes of the retained PREFIX/SOURCE/state; 0: only on changes (default 30)",
    "client_id": "MQTT client id (default detstream-RANDOM)",
    "keepalive": "seconds between keepalive pings (default 30)",
    "timeout": "seconds to connect, and to wait for an acknowledgement (default 5)",
    "password_env": "name of an environment variable holding the password",
    **TLS_OPTIONS,
    **delivery_options("records published before waiting for their acknowledgements (default 64)",
                       "~/.cache/detstream/spool/mqtt-HOST-PORT-PREFIX"),
}
MIN_BACKOFF_S = 0.1
MAX_BACKOFF_S = 5.0
LOOP_S = 0.05  # one turn of paho's network loop while waiting for an answer
# CONNACK refusals that waiting does not fix: protocol, client id, credentials, authorisation
PERMANENT_REFUSALS = (132, 133, 134, 135)


@dataclass(frozen=True)
class MqttTarget:
    """A parsed MQTT URI; `display` is the URI with its password masked."""

    display: str
    host: str
    port: int
    prefix: str
    qos: int
    detections: bool
    state_s: float
    client_id: str
    keepalive: int
    timeout_s: float
    delivery: DeliverySettings
    username: str | None
    password: str | None = field(repr=False)
    tls: ssl.SSLContext | None = field(repr=False)

    def topic(self, source: str, leaf: str) -> str:
        return f"{self.prefix}/{_level(source)}/{_level(leaf)}"


def _level(name: str) -> str:
    """`name` as one topic level: no separator, no wildcard, no NUL."""
    return re.sub(r"[/+#\x00]", "_", name) or "_"


def parse_mqtt_uri(uri: str, warn: bool = True) -> MqttTarget:
    """Parse and check `uri` (no connection); ConfigError naming the problem, password masked."""
    display = mask_url(uri)

    def bad(reason: str) -> ConfigError:
        return ConfigError(f"sinks: bad MQTT URI {display!r}: {reason}")

    try:
        parts = urlsplit(uri)
    except ValueError as exc:  # a bad IPv6 host: `[`
        raise bad(str(exc)) from None
    if parts.scheme not in ("mqtt", "mqtts") or not uri.startswith(f"{parts.scheme}://"):
        raise bad("expected mqtt://[user:password@]host[:port]/topic/prefix, or mqtts:// for TLS")
    if not parts.hostname:
        raise bad("no host")
    tls = parts.scheme == "mqtts"
    try:
        port = parts.port or (8883 if tls else 1883)
    except ValueError:
        raise bad("the port is not a number from 1 to 65535") from None
    if parts.fragment:
        raise bad("a '#' part is not allowed: '#' is no topic character (percent-encode it in a password as %23)")
    prefix = unquote(parts.path).strip("/") or DEFAULT_PREFIX
    if re.search(r"[+#\x00]", prefix):
        raise bad(f"the topic prefix {prefix!r} holds a wildcard (+ or #)")
    options = UriOptions(parse_query(parts.query, SINK_OPTIONS, bad), bad)
    if not tls and any(name in options.values for name in TLS_OPTIONS):
        raise bad("ssl_* options need an mqtts:// URL")
    password = unquote(parts.password) if parts.password is not None else None
    if "password_env" in options.values:
        variable = options.values["password_env"]
        if password is not None:
            raise bad("give the password in the URL or in password_env, not both")
        password = os.environ.get(variable)
        if password is None:
            raise bad(f"environment variable {variable} (password_env) is not set")
    # one spool per broker and prefix: a spool has one owner
    default_spool = spool_folder(f"mqtt-{parts.hostname}-{port}-{_level(prefix)}")
    return MqttTarget(
        display=display,
        host=parts.hostname,
        port=port,
        prefix=prefix,
        qos=int(options.number("qos", 1, minimum=0, maximum=2)),
        detections=options.flag("detections"),
        state_s=options.number("state_s", 30.0, minimum=0, integer=False),
        client_id=options.get("client_id") or f"detstream-{secrets.token_hex(4)}",
        keepalive=int(options.number("keepalive", 30, minimum=1)),
        timeout_s=options.number("timeout", 5.0, minimum=0.001, integer=False),
        delivery=DeliverySettings.from_options(options, default_spool, 64),
        username=unquote(parts.username) if parts.username else None,
        password=password,
        tls=client_tls(options, display, warn) if tls else None,
    )


class Refused(Exception):
    """The broker answered the CONNECT with a refusal."""

    def __init__(self, reason: str, permanent: bool) -> None:
        super().__init__(reason)
        self.permanent = permanent


def _reason(exc: BaseException) -> str:
    if isinstance(exc, ssl.SSLCertVerificationError):
        return f"TLS verification failed: {exc.verify_message} (a private CA needs ssl_ca_certs=CA.pem)"
    return redact(str(exc)) or type(exc).__name__


def _acknowledged(info: paho.MQTTMessageInfo) -> bool:
    return info.rc == paho.MQTT_ERR_SUCCESS and info.is_published()


class MqttTransport:
    """One paho client per connection, driven by the publisher thread."""

    retry_s = (MIN_BACKOFF_S, MAX_BACKOFF_S)

    def __init__(self, target: MqttTarget, health: Mapping[str, SourceHealth]) -> None:
        self.target = target
        self.health = health  # the run's, live: sources added while it runs appear here
        self._client: paho.Client | None = None
        self._sent_states: dict[str, tuple[str, int]] = {}  # per source: (state, session) last published
        self._state_times: dict[str, float] = {}

    def probe(self) -> str | None:
        """Connect once at start-up: None if the broker took us, the reason if it cannot be
        reached now; ConfigError for what waiting will not fix (credentials, TLS)."""
        try:
            client = self._open()
        except Refused as exc:
            if exc.permanent:
                raise ConfigError(f"sinks: {self.target.display}: the broker refused the connection: {exc}") from exc
            return str(exc)
        except SendFailed as exc:
            if isinstance(exc.__cause__, (ssl.SSLCertVerificationError, ssl.CertificateError)):
                raise ConfigError(f"sinks: {self.target.display}: {exc.reason}") from exc
            return exc.reason
        self._discard(client)
        return None

    def send(self, lines: list[str], replay: bool) -> Progress:
        client = self._connected()
        self._publish_states(client)
        pending: list[paho.MQTTMessageInfo | None] = []  # None: not a message
        for line in lines:
            topic = self._topic(line)
            pending.append(None if topic is None else client.publish(topic, line, qos=self.target.qos))
        failure = self._wait(client, [info for info in pending if info is not None])
        progress = Progress()
        for info in pending:  # what is handled at the front, in order
            if info is None:
                progress.unreadable += 1
            elif _acknowledged(info):
                progress.delivered += 1
            else:
                break
        if failure:
            raise SendFailed(failure, progress)
        return progress

    def idle(self) -> bool:
        client = self._connected()
        if (rc := client.loop(0)) != paho.MQTT_ERR_SUCCESS:  # keepalive pings, answers
            self._drop()
            raise SendFailed(f"connection lost ({paho.error_string(rc)})")
        self._publish_states(client)
        return True

    def close(self) -> None:
        """The final retained states (best effort: the broker may be away), then disconnect."""
        if self._client is None:
            return
        client = self._client
        self._sent_states.clear()
        self._wait(client, self._publish_states(client))
        self._discard(client)
        self._client = None

    # -- connection

    def _connected(self) -> paho.Client:
        if self._client is None:
            try:
                self._client = self._open()
            except Refused as exc:
                raise SendFailed(f"the broker refused the connection: {exc}") from exc
            self._sent_states.clear()  # a new connection republishes every state
        return self._client

    def _open(self) -> paho.Client:
        target = self.target
        client = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id=target.client_id, clean_session=True)
        client.connect_timeout = target.timeout_s
        client.max_inflight_messages = max(20, target.delivery.batch)
        if target.username is not None:
            client.username_pw_set(target.username, target.password)
        if target.tls is not None:
            client.tls_set_context(target.tls)
        answers: list[paho.ReasonCode] = []
        client.on_connect = lambda _client, _data, _flags, reason, _properties: answers.append(reason)
        try:
            client.connect(target.host, target.port, keepalive=target.keepalive)
        except (OSError, ValueError) as exc:  # refused, timed out, DNS, TLS (ssl.CertificateError is a ValueError)
            raise SendFailed(_reason(exc)) from exc
        deadline = time.monotonic() + target.timeout_s
        while not answers:
            rc = client.loop(LOOP_S)  # a refusal returns an error code, after on_connect heard it
            if not answers and (rc != paho.MQTT_ERR_SUCCESS or time.monotonic() > deadline):
                self._discard(client)
                raise SendFailed(f"no CONNACK ({paho.error_string(rc) if rc else f'within {target.timeout_s:g} s'})")
        if answers[0].is_failure:
            self._discard(client)
            raise Refused(str(answers[0]), answers[0].value in PERMANENT_REFUSALS)
        return client

    def _wait(self, client: paho.Client, infos: list[paho.MQTTMessageInfo]) -> str | None:
        """Run the network loop until every message is acknowledged; the failure, if any."""
        deadline = time.monotonic() + self.target.timeout_s
        while not all(_acknowledged(info) for info in infos):
            rc = client.loop(LOOP_S)
            if rc != paho.MQTT_ERR_SUCCESS:
                self._drop()
                return f"connection lost ({paho.error_string(rc)})"
            if time.monotonic() > deadline:
                self._drop()  # a broker that does not answer in time is treated as gone
                return f"no acknowledgement within {self.target.timeout_s:g} s"
        return None

    def _drop(self) -> None:
        if self._client is not None:
            self._discard(self._client)
            self._client = None

    @staticmethod
    def _discard(client: paho.Client) -> None:
        if client.disconnect() == paho.MQTT_ERR_SUCCESS:  # DISCONNECT queued on a live socket:
            client.loop(0)  # write it; paho closes the socket after it

    # -- what goes where

    def _topic(self, line: str) -> str | None:
        try:
            record = json.loads(line)
            source, schema = str(record["source"]), record.get("schema")
            if schema == EVENTS_SCHEMA:
                return self.target.topic(source, str(record["type"]))
        except (ValueError, KeyError, TypeError, AttributeError):
            return None
        return self.target.topic(source, "detections") if schema == SCHEMA else None

    def _publish_states(self, client: paho.Client) -> list[paho.MQTTMessageInfo]:
        """Publish (retained) the state of each source that changed, or is due."""
        now = time.monotonic()
        published = []
        for source, health in list(self.health.items()):
            snapshot = health.snapshot()
            key = (snapshot["state"], snapshot["session"])
            due = self.target.state_s > 0 and now - self._state_times.get(source, -1e18) >= self.target.state_s
            if self._sent_states.get(source) == key and not due:
                continue
            last_error = snapshot["last_error"]
            body = {"schema": STATE_SCHEMA, "source": source, "ts": round(time.time(), 3), **snapshot,
                    "last_error": redact(last_error) if last_error else None}
            payload = json.dumps(body, separators=(",", ":"))
            published.append(client.publish(self.target.topic(source, "state"), payload, qos=self.target.qos, retain=True))
            self._sent_states[source] = key
            self._state_times[source] = now
        return published


class MqttSink(PushSink):
    FORM = "mqtt://[USER:PASSWORD@]HOST[:PORT]/TOPIC/PREFIX, mqtts://... (TLS)"

    @classmethod
    def check(cls, uri: str) -> None:
        parse_mqtt_uri(uri, warn=False)

    def __init__(self, uri: str, ctx: RunContext, queue_size: int, sources: list[str]) -> None:
        self.target = parse_mqtt_uri(uri)
        transport = MqttTransport(self.target, ctx.health)
        unreachable = transport.probe()  # refused credentials or TLS stop the run here
        if unreachable:
            log.warning("%s unreachable at start-up (%s): spooling until it answers", self.target.display, unreachable)
        super().__init__(uri, ctx, queue_size, self.target.display, transport, self.target.delivery)

    def write(self, message: Message) -> None:
        if self.target.detections:
            self.offer(message.line)
