"""What a source URI is (live or file) and how to show it without its secrets.

Camera URLs often carry credentials (`rtsp://admin:pw@cam/...`) or tokens in the query.
Everything that prints a URI - logs, errors, the summary - goes through `mask_url` or
`redact`, so a password never reaches a terminal or a log file.
"""

from __future__ import annotations

import re
from pathlib import PurePosixPath
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

# Protocols that only ever carry live streams.
LIVE_SCHEMES = frozenset({"rtsp", "rtsps", "rtmp", "rtmps", "srt", "udp", "rtp", "tcp"})
# An http(s) URL ending in one of these is a file on a web server, not a stream.
FILE_SUFFIXES = frozenset({".mp4", ".m4v", ".mkv", ".mov", ".avi", ".webm", ".flv"})
# Query parameters whose values are secrets (matched case-insensitively, as substrings).
SECRET_KEYS = ("pass", "pwd", "token", "key", "secret", "auth", "sig")

# greedy up to the last '@' before the path: a raw '@' inside a password is masked too
_USERINFO = re.compile(r"(?P<scheme>[a-zA-Z][a-zA-Z0-9+.-]*://)[^/\s'\"]+@")
_QUERY_SECRET = re.compile(
    # the lookahead leaves values that are already masked (and what follows them) alone
    r"(?P<key>[?&][^=&\s'\"]*(?:" + "|".join(SECRET_KEYS) + r")[^=&\s'\"]*=)(?!\*\*\*)[^&\s'\"]+",
    re.IGNORECASE,
)


def mask_url(uri: str) -> str:
    """`uri` with user info and secret query values replaced by `***`."""
    if "://" not in uri:
        return uri
    parts = urlsplit(uri)
    netloc = parts.netloc
    if "@" in netloc:
        netloc = "***@" + netloc.rpartition("@")[2]
    query = parts.query
    if query:
        pairs = [(k, "***" if _is_secret(k) else v) for k, v in parse_qsl(query, keep_blank_values=True)]
        query = urlencode(pairs, safe="*")
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


def redact(text: str) -> str:
    """`text` with every credential-bearing URL inside it masked (for foreign error text)."""
    text = _USERINFO.sub(r"\g<scheme>***@", text)
    return _QUERY_SECRET.sub(r"\g<key>***", text)


def _is_secret(key: str) -> bool:
    return any(word in key.lower() for word in SECRET_KEYS)


def is_live_uri(uri: str) -> bool:
    """True for stream protocols, capture devices and http(s) URLs that are not video files."""
    if uri.startswith("/dev/"):
        return True
    if "://" not in uri:
        return False
    parts = urlsplit(uri)
    scheme = parts.scheme.lower()
    if scheme in LIVE_SCHEMES:
        return True
    if scheme in ("http", "https"):
        return PurePosixPath(parts.path).suffix.lower() not in FILE_SUFFIXES
    return False


def input_format(uri: str) -> str | None:
    """FFmpeg input format that must be named explicitly (capture devices are not probed)."""
    if uri.startswith("/dev/video"):
        return "v4l2"
    return None


class RedactingFilter:
    """Logging filter that masks credentials in every record (a last line of defence)."""

    def filter(self, record) -> bool:  # noqa: ANN001 - logging.Filter protocol
        message = record.getMessage()
        masked = redact(message)
        if masked != message:
            record.msg, record.args = masked, ()
        return True
