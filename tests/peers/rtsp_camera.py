#!/usr/bin/python3
"""An RTSP camera for the tests: GStreamer's RTSP server serving a live test picture
(a white ball moving over a flat background) as H.264, with AAC sound (mpeg4-generic,
which retina takes), optionally behind Basic authentication.

Run with the system python3 (python3-gi, gir1.2-gst-rtsp-server-1.0):
    /usr/bin/python3 tests/peers/rtsp_camera.py --port 8554 --path /cam
"""

import argparse
import sys

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstRtspServer", "1.0")
from gi.repository import GLib, Gst, GstRtspServer  # noqa: E402


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--path", default="/cam")
    p.add_argument("--width", type=int, default=320)
    p.add_argument("--height", type=int, default=180)
    p.add_argument("--fps", type=int, default=30)
    p.add_argument("--background", default="0xff0000ff", help="ARGB of the background")
    p.add_argument("--user")
    p.add_argument("--password")
    a = p.parse_args()

    Gst.init(None)
    video = (
        f"videotestsrc is-live=true pattern=ball background-color={a.background} "
        f"foreground-color=0xffffffff ! video/x-raw,width={a.width},height={a.height},"
        f"framerate={a.fps}/1 ! x264enc tune=zerolatency speed-preset=ultrafast "
        f"key-int-max={a.fps} ! rtph264pay name=pay0 pt=96 config-interval=-1"
    )
    audio = (
        "audiotestsrc is-live=true wave=sine freq=440 ! audioconvert ! audioresample ! "
        "audio/x-raw,rate=48000,channels=2 ! voaacenc ! rtpmp4gpay name=pay1 pt=97"
    )
    factory = GstRtspServer.RTSPMediaFactory()
    factory.set_launch(f"( {video} {audio} )")
    factory.set_shared(True)
    server = GstRtspServer.RTSPServer()
    server.set_address("127.0.0.1")
    server.set_service(str(a.port))
    if a.user:
        auth = GstRtspServer.RTSPAuth()
        token = GstRtspServer.RTSPToken()
        token.set_string("media.factory.role", a.user)
        auth.add_basic(GstRtspServer.RTSPAuth.make_basic(a.user, a.password or ""), token)
        server.set_auth(auth)
        role = Gst.Structure.from_string(
            f"{a.user}, media.factory.access=(boolean)true, media.factory.construct=(boolean)true"
        )[0]
        factory.add_role_from_structure(role)
    server.get_mount_points().add_factory(a.path, factory)
    if server.attach(None) == 0:
        sys.exit(f"cannot listen on port {a.port}")
    print(f"rtsp://127.0.0.1:{a.port}{a.path} ready", flush=True)
    GLib.MainLoop().run()


if __name__ == "__main__":
    main()
