"""Credentials never shown: the one place that masks them.

Camera, stream and Redis URLs carry credentials (`rtsp://admin:pw@cam/...`,
`redis://detector:pw@host/0`) or tokens in the query (`?token=...`, `?X-Amz-Signature=...`).
Everything that shows a URI or foreign error text - log lines, errors, the run summary,
stage names, Prometheus labels - goes through `mask_url` (one URI) or `redact` (free text).

Rules, the same for every scheme (rtsp, rtsps, rtmp, srt, http, https, redis, rediss, ...):
- the password of the userinfo becomes `***`; the user name stays (it says *who*
  connects, which a reader needs): `rtsp://admin:***@cam/1`, `redis://:***@host/0`.
  A user without a password is not a secret and stays as it is.
- the userinfo ends at the LAST `@` before the end of the host part (the first `/`, `?`
  or `#`), the password starts after the FIRST `:` in it: passwords may hold raw `@` and
  `:`. This is how FFmpeg and urllib split a URL, so what we mask is exactly what the
  client sends as the password. Percent-encoded passwords are masked as written; a raw
  '/', '?' or '#' in a password ends the host part for every client too, so it must be
  percent-encoded (%2F %3F %23) to work at all.
- the value of a query (or fragment) parameter is `***` when its key, lower-cased, ends
  in one of SECRET_KEYS: `token`, `access_token`, `api_key`, `X-Amz-Signature`, ...
- anything without `://` (a file path) is returned unchanged by `mask_url`.
Masking is idempotent, and it never re-encodes the rest of the URL.

In free text (`redact`), a URL ends at white space; query values also end at a quote or
`<>`, so `'rtsp://...?token=x'` keeps its closing quote. When in doubt, more is masked.
"""

from __future__ import annotations

import logging
import re

MASK = "***"
# Query keys whose values are secrets: a key matches when, lower-cased, it ends in one of
# these (`token`, `access_token`, `api_key`, `x-amz-signature`, `authkey` ...).
SECRET_KEYS = ("token", "password", "passwd", "pass", "pwd", "key", "secret", "sig", "signature", "auth")

_SCHEME = r"[A-Za-z][A-Za-z0-9+.-]*://"


def _userinfo_pattern(stop: str) -> re.Pattern[str]:
    # user: no ':' or '@'; password: greedy, so it runs to the LAST '@' before the host ends
    return re.compile(rf"(?P<head>{_SCHEME}[^:@/?#{stop}]*:)(?P<password>[^/?#{stop}]+)@")


def _parameter_pattern(stop: str) -> re.Pattern[str]:
    return re.compile(rf"(?P<head>[?&#](?P<key>[^=&#?{stop}]*)=)(?P<value>[^&#{stop}]*)")


# One URI: every character up to the host's end can be part of the password.
_URI_USERINFO = _userinfo_pattern("")
_URI_PARAMETER = _parameter_pattern("")
# Free text: a URL ends at white space; a value also at quotes and angle brackets.
_TEXT_URL = re.compile(rf"{_SCHEME}\S*")
_TEXT_USERINFO = _userinfo_pattern(r"\s")
_TEXT_PARAMETER = _parameter_pattern(r"\s'\"<>")


def is_secret_key(key: str) -> bool:
    """True for a query key whose value must not be shown (case-insensitive suffix match)."""
    return key.lower().endswith(SECRET_KEYS)


def mask_url(uri: str) -> str:
    """`uri` with its password and secret query values replaced by `***`; paths unchanged."""
    if "://" not in uri:
        return uri
    return _mask(uri, _URI_USERINFO, _URI_PARAMETER)


def redact(text: str) -> str:
    """`text` with every URL inside it masked like `mask_url` (for foreign error text, logs)."""
    if "://" not in text:
        return text
    return _TEXT_URL.sub(lambda m: _mask(m[0], _TEXT_USERINFO, _TEXT_PARAMETER), text)


def _mask(text: str, userinfo: re.Pattern[str], parameter: re.Pattern[str]) -> str:
    # the password first: once it is `***`, nothing in it can look like a query parameter
    text = userinfo.sub(lambda m: f"{m['head']}{MASK}@", text)

    def value(m: re.Match[str]) -> str:
        if m["value"] and is_secret_key(m["key"]):
            return m["head"] + MASK
        return m[0]

    return parameter.sub(value, text)


class RedactingFilter(logging.Filter):
    """Logging filter that masks credentials in every record (a last line of defence)."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        masked = redact(message)
        if masked != message:
            record.msg, record.args = masked, ()
        return True
