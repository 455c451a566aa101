"""Redis URLs: parse them, hide their passwords, and connect with clear start-up errors.

    redis://[user:password@]host[:port][/db][?option=value&...]
    rediss://...                                   (TLS)

The Redis sink and the consumer read the same URL, so one URL names the same streams on
both sides. Each user lists the query options it accepts (read by
pipeline.core.uri_options: anything else is an error that names the option and the
allowed ones). Every string we show (log lines, errors, stage
names in the run summary) goes through pipeline.core.secrets first.
"""

from __future__ import annotations

import os
from collections.abc import Collection
from dataclasses import dataclass, field
from urllib.parse import unquote, urlsplit

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from pipeline.core.errors import RedisSetupError
from pipeline.core.secrets import mask_url, redact
from pipeline.core.uri_options import UriOptions, parse_query

DEFAULT_PORT = 6379
DEFAULT_STREAM = "detstream:{source}"  # one stream per source; the sink and the consumer agree on it
# events of a source; not under `detstream:` so a consumer of detstream:{source} never matches it
DEFAULT_EVENTS_STREAM = "detstream-events:{source}"
DEFAULT_TIMEOUT_S = 5.0
# Options every user of a Redis URL accepts: connection, credentials, TLS.
CONNECTION_OPTIONS = {
    "timeout": "socket connect/read timeout in seconds (default 5)",
    "password_env": "name of an environment variable holding the password",
    "ssl_ca_certs": "CA bundle to verify the server (rediss://)",
    "ssl_certfile": "client certificate for mutual TLS (rediss://)",
    "ssl_keyfile": "client key for mutual TLS (rediss://)",
    "ssl_cert_reqs": "required (default), optional or none (rediss://)",
}
_TLS_OPTIONS = ("ssl_ca_certs", "ssl_certfile", "ssl_keyfile", "ssl_cert_reqs")


@dataclass(frozen=True)
class RedisTarget:
    """A parsed Redis URL. `display` is the URL with the password masked."""

    display: str
    host: str
    port: int
    db: int
    tls: bool
    username: str | None
    password: str | None = field(repr=False)
    options: dict[str, str] = field(default_factory=dict)

    def error(self, reason: str) -> RedisSetupError:
        return RedisSetupError(f"{self.display}: {reason}")

    def number(self, name: str, default: float, minimum: float = 0, integer: bool = True) -> float:
        """Query option `name` as a number >= minimum (an int if `integer`)."""
        return UriOptions(self.options, self.error).number(name, default, minimum, integer)

    def key_template(self, name: str, default: str | None) -> str | None:
        """Query option `name` as a key template whose only placeholder is {source}."""
        template = self.options.get(name, default)
        if template is None:
            return None
        try:
            template.format(source="x")
        except (KeyError, IndexError, ValueError):
            raise self.error(f"option {name}={template!r}: the only placeholder allowed is {{source}}") from None
        if not template:
            raise self.error(f"option {name} is empty")
        return template

    def client(self) -> redis.Redis:
        """A client (no connection yet: redis-py connects on the first command)."""
        timeout = self.number("timeout", DEFAULT_TIMEOUT_S, minimum=0.001, integer=False)
        kwargs: dict[str, object] = {
            "host": self.host,
            "port": self.port,
            "db": self.db,
            "username": self.username,
            "password": self.password,
            "socket_timeout": timeout,
            "socket_connect_timeout": timeout,
            "decode_responses": True,
            # no silent retries inside redis-py: the sink and the consumer have their own
            # backoff, and a hidden retry would stretch each failure by up to 3x the timeout
            "retry": Retry(NoBackoff(), 0),
        }
        if self.tls:
            reqs = self.options.get("ssl_cert_reqs", "required")
            if reqs not in ("required", "optional", "none"):
                raise self.error(f"option ssl_cert_reqs={reqs!r} is not required, optional or none")
            kwargs.update(ssl=True, ssl_cert_reqs=reqs)
            for name in ("ssl_ca_certs", "ssl_certfile", "ssl_keyfile"):
                if name in self.options:
                    kwargs[name] = self.options[name]
        return redis.Redis(**kwargs)  # type: ignore[arg-type]


def parse_redis_url(url: str, options: Collection[str]) -> RedisTarget:
    """Parse `url`, accepting the query options in `options` plus CONNECTION_OPTIONS."""
    display = mask_url(url)

    def bad(reason: str) -> RedisSetupError:
        return RedisSetupError(f"bad Redis URL {display!r}: {reason}")

    try:
        parts = urlsplit(url)
    except ValueError as exc:  # `redis://[`: a bad IPv6 host
        raise bad(str(exc)) from None

    if parts.scheme not in ("redis", "rediss"):
        raise bad("expected redis://[user:password@]host[:port][/db] or rediss:// for TLS")
    if not parts.hostname:
        raise bad("no host")
    try:
        port = parts.port or DEFAULT_PORT
    except ValueError:
        raise bad("the port is not a number from 1 to 65535") from None
    path = parts.path.strip("/")
    if path and not path.isdigit():
        raise bad(f"the path must be a database number, got {parts.path!r}")
    if parts.fragment:
        raise bad("a '#' part is not allowed (percent-encode '#' in a password as %23)")
    allowed = set(options) | set(CONNECTION_OPTIONS)
    query = parse_query(parts.query, allowed, bad)
    UriOptions(query, bad).number("timeout", DEFAULT_TIMEOUT_S, minimum=0.001, integer=False)  # checked now, used later
    tls = parts.scheme == "rediss"
    if not tls and any(name in query for name in _TLS_OPTIONS):
        raise bad("ssl_* options need a rediss:// URL")
    password = unquote(parts.password) if parts.password is not None else None
    if "password_env" in query:
        if password is not None:
            raise bad("give the password in the URL or in password_env, not both")
        password = os.environ.get(query["password_env"])
        if password is None:
            raise bad(f"environment variable {query['password_env']} (password_env) is not set")
    return RedisTarget(
        display=display,
        host=parts.hostname,
        port=port,
        db=int(path or 0),
        tls=tls,
        username=unquote(parts.username) if parts.username else None,
        password=password,
        options=query,
    )


def check_server(client: redis.Redis, target: RedisTarget) -> str | None:
    """PING the server: None if it answers, the reason if it cannot be reached now.

    Raises RedisSetupError for what waiting will not fix: wrong credentials, missing ACL
    permissions, a bad database number, TLS verification failures.
    """
    try:
        client.ping()
    except redis.AuthenticationError as exc:  # a ConnectionError subclass: test it first
        raise target.error(f"authentication failed: wrong user or password, or the user is disabled ({exc})") from exc
    except redis.ConnectionError as exc:
        reason = redact(str(exc))
        if "SSL" in reason or "certificate" in reason.lower():
            raise target.error(f"TLS handshake failed: {reason}") from exc
        return reason
    except redis.TimeoutError as exc:
        return f"timed out ({exc})"
    except redis.ResponseError as exc:  # NOPERM, bad db index, ...
        raise target.error(f"the server refused the connection: {exc}") from exc
    return None
