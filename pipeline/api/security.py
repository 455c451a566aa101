"""Who may use the control API, and what its answers and logs may never show.

Rules:
- The API binds `api.address`, loopback by default. Any other address needs a token
  (`api.token`, else $DETSTREAM_API_TOKEN): without one, `serving()` refuses to start
  (ConfigError), before the model loads. A token has at least MIN_TOKEN_CHARS characters
  (a guessable token is no protection, and a short one could not be masked in text).
- With a token, every request needs `Authorization: Bearer TOKEN`, compared in constant
  time (hmac.compare_digest), except the two probes: `GET /health/live` and the status
  code of `GET /health/ready`. A probe reveals no name, setting or count (an unauthenticated
  ready answer is only {"ready": bool}), and orchestrators' probes should not have to
  carry the secret.
- An <img> cannot send a header, so the two image routes (frame.jpg, stream.mjpg) also
  take the token as `?token=` (the live page does so; it keeps the token in the URL's
  fragment, which browsers never send). Only those read-only routes: a token in a query
  string ends up in more places (history, proxies' logs) than a header. Our own request
  log never shows query strings.
- Without a token (loopback only) the Host header must name a loopback host: a web page
  in the browser cannot reach the API through DNS rebinding.
- Everything the API writes to a response or a log passes through `Scrubber`: the one
  masker (pipeline.core.secrets.redact) plus the token itself.
"""

from __future__ import annotations

import hmac
import ipaddress
import os
from collections.abc import Mapping

from werkzeug.wrappers import Request

from pipeline.core.config import ApiConfig
from pipeline.core.errors import ConfigError
from pipeline.core.secrets import MASK, redact

TOKEN_ENV = "DETSTREAM_API_TOKEN"
LOOPBACK_NAMES = ("localhost",)
MIN_TOKEN_CHARS = 16


def is_loopback(host: str) -> bool:
    """True for 127.0.0.0/8, ::1 and `localhost`; any other name counts as reachable from elsewhere."""
    host = host.strip("[]")
    if host.lower() in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def resolve_token(config: ApiConfig, environ: Mapping[str, str] = os.environ) -> str | None:
    """The token in force (`api.token`, else $DETSTREAM_API_TOKEN); a ConfigError when the
    address is not loopback and there is none."""
    token = config.token or environ.get(TOKEN_ENV) or None
    if token is None and not is_loopback(config.address):
        raise ConfigError(f"api.address {config.address} needs a token: set api.token or {TOKEN_ENV}", field="api.token")
    if token is not None and len(token) < MIN_TOKEN_CHARS:
        where = "api.token" if config.token else TOKEN_ENV
        raise ConfigError(f"{where}: at least {MIN_TOKEN_CHARS} characters (e.g. `openssl rand -hex 16`)", field="api.token")
    return token


def _same(given: str, expected: str) -> bool:
    return hmac.compare_digest(given.encode(), expected.encode())


class Auth:
    """Checks requests against the token (or, without one, the Host header)."""

    def __init__(self, token: str | None) -> None:
        self._token = token

    @property
    def required(self) -> bool:
        return self._token is not None

    def allows(self, request: Request, query: bool = False) -> bool:
        """The request carries the token: in the Authorization header, or with `query` in
        `?token=` too. Always true without a token."""
        if self._token is None:
            return True
        scheme, _, given = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() == "bearer" and _same(given.strip(), self._token):
            return True
        return query and _same(request.args.get("token", ""), self._token)

    def host_allowed(self, request: Request) -> bool:
        """Without a token, only loopback Host headers (DNS rebinding); with one, any."""
        if self._token is not None:
            return True
        host = request.host.rsplit(":", 1)[0] if not request.host.endswith("]") else request.host
        return is_loopback(host)


class Scrubber:
    """Masks credentials (pipeline.core.secrets) and the token in text bound for a response or a log."""

    def __init__(self, token: str | None) -> None:
        self._token = token

    def __call__(self, text: str) -> str:
        text = redact(text)
        return text.replace(self._token, MASK) if self._token else text
