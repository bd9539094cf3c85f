#!/usr/bin/python3
"""An RTSP camera for the tests: GStreamer's RTSP server serving a live test picture
(a white ball moving over a flat background) as H.264, with AAC sound (mpeg4-generic,
which retina takes), optionally behind Basic authentication.

With `--codec h265` the picture is H.265 instead. With `--switch WxH:ARGB`, SIGUSR1 makes the
camera switch, mid-session, to that picture size and background (new parameter sets with
the next key frame, as a camera does when its resolution is changed).

With `--timecode`, the picture instead carries the wall-clock time it was made, for latency
measurements: a row of 26 blocks of 64x64 pixels at the top left, white, then 24 bits of
(milliseconds since the epoch mod 2^24), most significant first (white = 1), then black;
the rest is a grey gradient with a bar sweeping across a band below the stamp.

Run with the system python3 (python3-gi, gir1.2-gst-rtsp-server-1.0):
    /usr/bin/python3 tests/peers/rtsp_camera.py --port 8554 --path /cam
"""

import argparse
import signal
import sys
import time

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstRtspServer", "1.0")
from gi.repository import GLib, Gst, GstRtspServer  # noqa: E402


BLOCK = 64
BITS = 24


class TimecodeSource:
    """Feeds an appsrc with I420 pictures stamped with the time they were made."""

    def __init__(self, width: int, height: int, fps: int) -> None:
        self.w, self.h, self.fps = width, height, fps
        luma = bytearray(width * height)
        for y in range(height):
            row = 16 + (200 * y) // height
            luma[y * width:(y + 1) * width] = bytes([row]) * width
        self.luma = bytes(luma)
        # One picture kept and changed in place: the stamp rows, and a bar sweeping across a
        # band below them (cheap enough that two 1080p cameras leave the CPU to the server).
        self.picture = luma + bytes([128]) * (2 * (width // 2) * (height // 2))
        self.band = range(BLOCK * 2, min(height, BLOCK * 4))
        self.bar = 0
        self.frame = 0
        self.start = 0.0

    def need_data(self, src, _length) -> None:  # noqa: ANN001
        # appsrc asks as fast as the encoder takes: pace to the frame rate here.
        if self.frame == 0:
            self.start = time.monotonic()
        delay = self.start + self.frame / self.fps - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        w, picture = self.w, self.picture
        span = min(32, w - self.bar)
        for y in self.band:
            at = y * w + self.bar
            picture[at:at + span] = self.luma[at:at + span]
        self.bar = (self.frame * 16) % w
        span = min(32, w - self.bar)
        for y in self.band:
            at = y * w + self.bar
            picture[at:at + span] = b"\xeb" * span
        now = int(time.time() * 1000) % (1 << BITS)
        blocks = [1] + [(now >> (BITS - 1 - i)) & 1 for i in range(BITS)] + [0]
        row = b"".join((b"\xeb" if bit else b"\x10") * BLOCK for bit in blocks)
        for y in range(BLOCK):
            picture[y * w:y * w + len(row)] = row
        buf = Gst.Buffer.new_wrapped(bytes(picture))
        buf.pts = self.frame * Gst.SECOND // self.fps
        buf.duration = Gst.SECOND // self.fps
        self.frame += 1
        src.emit("push-buffer", buf)


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
    p.add_argument("--timecode", action="store_true", help="stamp the time into each picture")
    p.add_argument("--codec", choices=["h264", "h265"], default="h264")
    p.add_argument("--switch", help="WxH:ARGB to switch to on SIGUSR1")
    a = p.parse_args()

    Gst.init(None)
    caps = f"video/x-raw,width={a.width},height={a.height},framerate={a.fps}/1"
    if a.timecode:
        source = f"appsrc name=clock format=time caps=\"{caps},format=I420\""
    else:
        source = (
            f"videotestsrc name=pattern is-live=true pattern=ball "
            f"background-color={a.background} foreground-color=0xffffffff ! "
            f"videoscale ! capsfilter name=size caps=\"{caps}\""
        )
    if a.codec == "h265":
        encode = (
            f"x265enc tune=zerolatency speed-preset=ultrafast key-int-max={a.fps} ! "
            "video/x-h265,profile=main ! rtph265pay name=pay0 pt=96 config-interval=-1"
        )
    else:
        encode = (
            f"x264enc tune=zerolatency speed-preset=ultrafast threads=1 "
            f"key-int-max={a.fps} ! rtph264pay name=pay0 pt=96 config-interval=-1"
        )
    video = f"{source} ! {encode}"
    audio = (
        "audiotestsrc is-live=true wave=sine freq=440 ! audioconvert ! audioresample ! "
        "audio/x-raw,rate=48000,channels=2 ! voaacenc ! rtpmp4gpay name=pay1 pt=97"
    )
    factory = GstRtspServer.RTSPMediaFactory()
    factory.set_launch(f"( {video} {audio} )")
    factory.set_shared(True)
    medias = []
    factory.connect("media-configure", lambda _f, media: medias.append(media))
    if a.switch:
        size, background = a.switch.split(":")
        width, height = size.split("x")

        def switch() -> bool:
            for media in medias:
                pipeline = media.get_element()
                pattern = pipeline.get_by_name("pattern")
                if pattern is None:
                    continue
                pattern.set_property("background-color", int(background, 16))
                pipeline.get_by_name("size").set_property(
                    "caps",
                    Gst.Caps.from_string(
                        f"video/x-raw,width={width},height={height},framerate={a.fps}/1"
                    ),
                )
            print(f"switched to {size}", flush=True)
            return GLib.SOURCE_REMOVE

        GLib.unix_signal_add(GLib.PRIORITY_DEFAULT, signal.SIGUSR1, switch)
    if a.timecode:
        def configure(_factory, media) -> None:  # noqa: ANN001
            # A new media (the first client after none) starts its own clock.
            clock = TimecodeSource(a.width, a.height, a.fps)
            appsrc = media.get_element().get_by_name("clock")
            appsrc.connect("need-data", clock.need_data)

        factory.connect("media-configure", configure)
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
