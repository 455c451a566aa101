"""Webhook signatures: how the webhook sink signs a POST and how a receiver checks it.

Every POST carries two headers (documented in docs/webhook-mqtt.md):

    X-Detstream-Timestamp: 1795460774                      (unix seconds when it was sent)
    X-Detstream-Signature: sha256=<hex of HMAC-SHA256(secret, "<timestamp>." + body)>

The signed string is the timestamp's decimal digits, one '.', then the raw body bytes
exactly as received (verify before parsing the JSON: re-serialising changes the bytes).
A receiver checks the HMAC in constant time and refuses timestamps too far from its
clock, so a captured request cannot be replayed later. Pure standard library: receivers
may import this module without the rest of detstream's dependencies.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Mapping

TIMESTAMP_HEADER = "X-Detstream-Timestamp"
SIGNATURE_HEADER = "X-Detstream-Signature"
SCHEME = "sha256="
DEFAULT_TOLERANCE_S = 300  # how far a receiver accepts a timestamp from its own clock


def signature(secret: bytes, timestamp: int, body: bytes) -> str:
    """The value of the signature header for `body` sent at `timestamp`."""
    digest = hmac.new(secret, str(timestamp).encode() + b"." + body, hashlib.sha256).hexdigest()
    return SCHEME + digest


def signature_headers(secret: bytes, body: bytes, now: float | None = None) -> dict[str, str]:
    """Both headers for a POST of `body` made now."""
    timestamp = int(time.time() if now is None else now)
    return {TIMESTAMP_HEADER: str(timestamp), SIGNATURE_HEADER: signature(secret, timestamp, body)}


def verify(secret: bytes, headers: Mapping[str, str], body: bytes,
           tolerance_s: float = DEFAULT_TOLERANCE_S, now: float | None = None) -> bool:
    """True if `headers` (any mapping; names are matched case-insensitively) sign `body`
    with `secret`, at a timestamp within `tolerance_s` of `now`."""
    lowered = {name.lower(): value for name, value in headers.items()}
    raw_timestamp = lowered.get(TIMESTAMP_HEADER.lower(), "")
    given = lowered.get(SIGNATURE_HEADER.lower(), "")
    if not (raw_timestamp.isascii() and raw_timestamp.isdigit()) or not given.startswith(SCHEME):
        return False
    timestamp = int(raw_timestamp)
    if abs((time.time() if now is None else now) - timestamp) > tolerance_s:
        return False
    return hmac.compare_digest(given, signature(secret, timestamp, body))
