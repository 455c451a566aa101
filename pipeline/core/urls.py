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


def input_format(uri: str) -> str | None:
    """FFmpeg input format that must be named explicitly (capture devices are not probed)."""
    if uri.startswith("/dev/video"):
        return "v4l2"
    return None
