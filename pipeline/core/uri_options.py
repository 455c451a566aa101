"""Query options of sink and consumer URIs, and the TLS settings they share.

`redis://...?maxlen=N`, `webhook:https://...?timeout=5`, `mqtt://...?qos=1`: each user of
a URI lists the options it accepts (name -> one-line help) and reads them through
`UriOptions`. Rules, the same for every kind:
- an unknown option, or one given twice, is an error that names the allowed options;
- a value of the wrong kind is an error naming the option, the bad value and what is
  allowed (`option timeout='x' is not a number >= 0.001`);
- the caller supplies the error (RedisSetupError, ConfigError) and the masked URI: the
  messages never quote a password (pipeline.core.secrets).

`client_tls` builds the client-side TLS context of the push sinks (webhook, MQTT) from
the same `ssl_*` option names the Redis URLs use, so one vocabulary serves every sink.
Verification is on unless `ssl_cert_reqs=none`, which is logged as a warning every time
a sink is made with it.
"""

from __future__ import annotations

import logging
import math
import ssl
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from urllib.parse import parse_qsl

log = logging.getLogger("detstream")

# TLS options of the push sinks (the Redis URL documents its own, handled by redis-py)
TLS_OPTIONS = {
    "ssl_ca_certs": "CA bundle (PEM) to verify the server with, instead of the system CAs",
    "ssl_certfile": "client certificate (PEM) for servers that require one (mutual TLS)",
    "ssl_keyfile": "key of ssl_certfile, if not in the same file",
    "ssl_cert_reqs": "required (default) or none: none turns server verification off (logged as a warning)",
}
_TRUE = ("1", "true", "yes", "on")
_FALSE = ("0", "false", "no", "off", "")


def parse_query(query: str, allowed: Collection[str], error: Callable[[str], Exception]) -> dict[str, str]:
    """The options of a URI's query string; unknown or repeated names raise `error(reason)`."""
    values: dict[str, str] = {}
    for key, value in parse_qsl(query, keep_blank_values=True):
        if key not in allowed:
            raise error(f"unknown option {key!r} (allowed: {', '.join(sorted(allowed))})")
        if key in values:
            raise error(f"option {key!r} given twice")
        values[key] = value
    return values


@dataclass(frozen=True)
class UriOptions:
    """Parsed options, read typed; every bad value raises `error(reason)`."""

    values: Mapping[str, str]
    error: Callable[[str], Exception]

    def get(self, name: str, default: str | None = None) -> str | None:
        return self.values.get(name, default)

    def number(self, name: str, default: float, minimum: float = 0, integer: bool = True,
               maximum: float | None = None) -> float:
        """Option `name` as a number in [minimum, maximum] (an int if `integer`)."""
        raw = self.values.get(name)
        if raw is None:
            return default
        try:
            value: float | None = int(raw) if integer else float(raw)
        except ValueError:
            value = None
        # nan and inf parse as floats, and no timeout, size or count may be either
        if value is None or not math.isfinite(value) or value < minimum or (maximum is not None and value > maximum):
            kind = "an integer" if integer else "a number"
            bound = f"from {minimum:g} to {maximum:g}" if maximum is not None else f">= {minimum:g}"
            raise self.error(f"option {name}={raw!r} is not {kind} {bound}")
        return value

    def flag(self, name: str) -> bool:
        """Option `name` as a yes/no switch (1/0, true/false, yes/no, on/off); absent is no."""
        raw = self.values.get(name)
        if raw is None:
            return False
        if raw.lower() in _TRUE:
            return True
        if raw.lower() in _FALSE:
            return False
        raise self.error(f"option {name}={raw!r} is not 1 or 0 (true/false, yes/no, on/off)")


def client_tls(options: UriOptions, display: str, warn: bool = True) -> ssl.SSLContext:
    """The TLS context of a client of `display` (masked URI) from the TLS_OPTIONS in `options`
    (`warn`: log that verification is off; False when only checking the options)."""
    reqs = options.get("ssl_cert_reqs", "required")
    if reqs not in ("required", "none"):
        raise options.error(f"option ssl_cert_reqs={reqs!r} is not required or none")
    ca, certfile, keyfile = options.get("ssl_ca_certs"), options.get("ssl_certfile"), options.get("ssl_keyfile")
    if keyfile and not certfile:
        raise options.error("option ssl_keyfile needs ssl_certfile")
    try:
        context = ssl.create_default_context(cafile=ca)
        if certfile:
            context.load_cert_chain(certfile, keyfile)
    except (OSError, ssl.SSLError) as exc:  # missing file, not PEM, key does not match
        named = ", ".join(f"{k}={v}" for k, v in (("ssl_ca_certs", ca), ("ssl_certfile", certfile),
                                                   ("ssl_keyfile", keyfile)) if v)
        raise options.error(f"cannot load {named}: {getattr(exc, 'strerror', None) or exc}") from exc
    if reqs == "none":
        context.check_hostname = False  # must come before verify_mode (ssl's rule)
        context.verify_mode = ssl.CERT_NONE
    if reqs == "none" and warn:
        log.warning("%s: TLS server verification is OFF (ssl_cert_reqs=none): anyone on the network path "
                    "can read and change what is sent; use ssl_ca_certs=CA.pem for a private CA instead", display)
    return context
