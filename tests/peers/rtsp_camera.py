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

A camera encodes in its own hardware, not on the server's CPU. To measure a server without
paying for live encoding on the same cores, `--make-clip PATH --frames N` writes such a
picture sequence once as an H.264 MP4 whose stamp is the frame's index instead of a time,
(`--noise`: noise below the stamp, a worst case for codecs), and `--replay PATH` serves that clip in real time (RTP timestamps from the clip), printing
`started <ms since the epoch>` each time it starts from the top: frame i leaves the camera
at that time + i / fps.

Run with the system python3 (python3-gi, gir1.2-gst-rtsp-server-1.0):
    /usr/bin/python3 tests/peers/rtsp_camera.py --port 8554 --path /cam
"""

import argparse
import os
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
    """Feeds an appsrc with I420 pictures stamped with the time they were made (or, for a
    clip, their index, as fast as they are taken)."""

    def __init__(
        self, width: int, height: int, fps: int, frames: int = 0, noise: bool = False
    ) -> None:
        self.w, self.h, self.fps = width, height, fps
        self.clip_frames = frames
        self.noise = noise
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
        if self.clip_frames and self.frame >= self.clip_frames:
            src.emit("end-of-stream")
            return
        if self.clip_frames and self.frame % (self.fps * 60) == 0:
            print(f"clip: {self.frame} of {self.clip_frames} frames", file=sys.stderr, flush=True)
        if self.frame == 0:
            self.start = time.monotonic()
        delay = self.start + self.frame / self.fps - time.monotonic()
        if delay > 0 and not self.clip_frames:
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
        if self.noise:
            # Noise below the band: the worst case for a decoder, and for the encoder of
            # the program that shows it.
            noisy = BLOCK * 4 * w
            picture[noisy:w * self.h] = os.urandom(w * self.h - noisy)
        now = (self.frame if self.clip_frames else int(time.time() * 1000)) % (1 << BITS)
        blocks = [1] + [(now >> (BITS - 1 - i)) & 1 for i in range(BITS)] + [0]
        row = b"".join((b"\xeb" if bit else b"\x10") * BLOCK for bit in blocks)
        for y in range(BLOCK):
            picture[y * w:y * w + len(row)] = row
        buf = Gst.Buffer.new_wrapped(bytes(picture))
        buf.pts = self.frame * Gst.SECOND // self.fps
        buf.duration = Gst.SECOND // self.fps
        self.frame += 1
        src.emit("push-buffer", buf)


def make_clip(path: str, width: int, height: int, fps: int, frames: int, noise: bool) -> None:
    """Encodes `frames` pictures stamped with their index into an H.264 MP4 at `path`."""
    caps = f"video/x-raw,width={width},height={height},framerate={fps}/1,format=I420"
    pipeline = Gst.parse_launch(
        f"appsrc name=clock format=time caps=\"{caps}\" ! "
        f"x264enc tune=zerolatency speed-preset=ultrafast bitrate=6000 key-int-max={fps} ! "
        f"h264parse ! mp4mux ! filesink location={path}"
    )
    clock = TimecodeSource(width, height, fps, frames, noise)
    pipeline.get_by_name("clock").connect("need-data", clock.need_data)
    pipeline.set_state(Gst.State.PLAYING)
    message = pipeline.get_bus().timed_pop_filtered(
        Gst.CLOCK_TIME_NONE, Gst.MessageType.EOS | Gst.MessageType.ERROR
    )
    pipeline.set_state(Gst.State.NULL)
    if message.type == Gst.MessageType.ERROR:
        sys.exit(f"cannot write the clip: {message.parse_error()[0].message}")


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
    p.add_argument("--make-clip", help="write a clip of --frames stamped pictures, then exit")
    p.add_argument("--frames", type=int, default=0)
    p.add_argument("--noise", action="store_true", help="a clip of noise below the stamp")
    p.add_argument("--replay", help="serve this clip (from --make-clip) in real time")
    a = p.parse_args()

    Gst.init(None)
    caps = f"video/x-raw,width={a.width},height={a.height},framerate={a.fps}/1"
    if a.make_clip:
        make_clip(a.make_clip, a.width, a.height, a.fps, a.frames, a.noise)
        return
    if a.replay:
        # Paced by the clip's timestamps before the payloader, as a live camera sends.
        # Parameter sets in band, in the key frame's own access unit (as a camera sends).
        source = (
            f"filesrc location={a.replay} ! qtdemux ! h264parse config-interval=-1 ! "
            "video/x-h264,stream-format=byte-stream,alignment=au ! identity sync=true"
        )
    elif a.timecode:
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
    if a.replay:
        video = f"{source} ! rtph264pay name=pay0 pt=96"
    audio = (
        "audiotestsrc is-live=true wave=sine freq=440 ! audioconvert ! audioresample ! "
        "audio/x-raw,rate=48000,channels=2 ! voaacenc ! rtpmp4gpay name=pay1 pt=97"
    )
    factory = GstRtspServer.RTSPMediaFactory()
    # A clip is not live: mixed with the live sound, its late packets would be dropped.
    factory.set_launch(f"( {video} )" if a.replay else f"( {video} {audio} )")
    factory.set_shared(True)
    medias = []
    factory.connect("media-configure", lambda _f, media: medias.append(media))
    if a.replay:
        def configure_replay(_factory, media) -> None:  # noqa: ANN001
            def on_state(media, state) -> None:  # noqa: ANN001
                if state != Gst.State.PLAYING:
                    return
                # The wall-clock time of running time 0, when the clip's first frame left.
                pipeline = media.get_element()
                running = pipeline.get_clock().get_time() - pipeline.get_base_time()
                start_ms = time.time() * 1000 - running / 1e6
                print(f"started {start_ms:.1f}", flush=True)

            media.connect("new-state", on_state)

        factory.connect("media-configure", configure_replay)
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
