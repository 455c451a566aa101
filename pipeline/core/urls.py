"""What a source URI is: a live stream or a file, and how FFmpeg must be told to open it.

Showing a URI without its credentials is pipeline.core.secrets' job, not this module's.
"""

from __future__ import annotations

from pathlib import PurePosixPath
from urllib.parse import urlsplit

# Protocols that only ever carry live streams.
LIVE_SCHEMES = frozenset({"rtsp", "rtsps", "rtmp", "rtmps", "srt", "udp", "rtp", "tcp"})
# An http(s) URL ending in one of these is a file on a web server, not a stream.
FILE_SUFFIXES = frozenset({".mp4", ".m4v", ".mkv", ".mov", ".avi", ".webm", ".flv"})


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


def check_printable(value: str | None) -> str | None:
    """`value` unless it holds a control character (ValueError): a NUL cuts the string
    FFmpeg sees, a newline would forge log lines and JSON-lines output."""
    if value is not None and any(ord(c) < 32 or ord(c) == 127 for c in value):
        raise ValueError("contains a control character (newline, tab, NUL, ...)")
    return value


def check_source_uri(uri: str) -> str:
    """`uri` if it can be used as a source (ValueError if not): printable, and a URL must
    parse (`rtsp://[` does not, and every later use of a URL splits it)."""
    check_printable(uri)
    if "://" in uri:
        try:
            urlsplit(uri).port  # noqa: B018 - raises for a bad IPv6 host or port
        except ValueError as exc:
            raise ValueError(f"not a valid URL: {exc}") from None
    return uri


def input_format(uri: str) -> str | None:
    """FFmpeg input format that must be named explicitly (capture devices are not probed)."""
    if uri.startswith("/dev/video"):
        return "v4l2"
    return None
