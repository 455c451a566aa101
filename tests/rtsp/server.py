"""A real RTSP server for the live-source tests: GStreamer's gst-rtsp-server.

Run with the *system* python3 (PyGObject and the GStreamer typelibs come from Debian
packages, not from the venv):

    python3 tests/rtsp/server.py --port 8554 --path /cam --video clip.mp4

It serves the H.264 track of `--video` (an MP4) at real-time pace, each client from the
start of the file (the media is not shared, so a client that reconnects gets a keyframe
at once). It prints `ready <port>` on stdout once it listens. With `--user` and
`--password` it requires RTSP basic authentication (a client with other credentials gets
401 Unauthorized).
"""

from __future__ import annotations

import argparse
import sys

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstRtspServer", "1.0")
from gi.repository import GLib, Gst, GstRtspServer  # noqa: E402


def _viewer_token() -> "GstRtspServer.RTSPToken":
    """The token of an authenticated user: the role 'viewer', which may open the media."""
    token = GstRtspServer.RTSPToken()
    # set_string, not writable_structure().set_value: PyGObject hands out a copy of the structure
    token.set_string(GstRtspServer.RTSP_TOKEN_MEDIA_FACTORY_ROLE, "viewer")
    return token


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--path", default="/cam")
    parser.add_argument("--video", required=True, help="MP4 with an H.264 track")
    parser.add_argument("--user", help="require basic authentication as this user")
    parser.add_argument("--password", default="")
    args = parser.parse_args()

    Gst.init(None)
    server = GstRtspServer.RTSPServer()
    server.set_address("127.0.0.1")
    server.set_service(str(args.port))
    factory = GstRtspServer.RTSPMediaFactory()
    location = args.video.replace("\\", "\\\\").replace('"', '\\"')
    factory.set_launch(
        f'( filesrc location="{location}" ! qtdemux ! h264parse config-interval=-1 ! rtph264pay name=pay0 pt=96 )'
    )
    factory.set_shared(False)
    if args.user:
        auth = GstRtspServer.RTSPAuth.new()
        auth.add_basic(GstRtspServer.RTSPAuth.make_basic(args.user, args.password), _viewer_token())
        server.set_auth(auth)
        # without a role on the mount, authenticated users are refused too
        permissions = GstRtspServer.RTSPPermissions.new()
        permissions.add_permission_for_role("viewer", GstRtspServer.RTSP_PERM_MEDIA_FACTORY_ACCESS, True)
        permissions.add_permission_for_role("viewer", GstRtspServer.RTSP_PERM_MEDIA_FACTORY_CONSTRUCT, True)
        factory.set_permissions(permissions)
    server.get_mount_points().add_factory(args.path, factory)
    if server.attach(None) == 0:
        print(f"cannot listen on port {args.port}", file=sys.stderr, flush=True)
        return 1
    print(f"ready {args.port}", flush=True)
    GLib.MainLoop().run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
