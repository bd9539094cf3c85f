#!/usr/bin/python3
"""A hostile RTSP server for the tests: it completes a real RTSP handshake (OPTIONS,
DESCRIBE, SETUP with TCP-interleaved transport, PLAY, GET_PARAMETER keepalives,
TEARDOWN) and then sends H.264 over RTP that is wrong on purpose, to check that the
server's RTSP client (retina) copes without crashing or running away with resources.

Modes (what is sent after PLAY):
    garbage    valid 320x180 SPS/PPS in the SDP, then ~30 access units a second of RTP
               packets with random payloads (some with random NAL / FU-A headers), and
               every 3 s an interleaved frame that is not even an RTP header (3 bytes,
               or version 0). A strict client drops the session at its first error, so
               connections take turns at what comes first: random payloads, a 3-byte
               frame, a version 0 header.
    bigsps     an SPS declaring 10000x10000 (in the SDP and in band), with SPS + PPS +
               a plausible IDR slice at 30 access units a second.
    keyframes  valid 320x180 SPS/PPS, then access units of AUD + SPS + PPS only
               (no slice at all), 30 a second, 3000 ticks apart.
    flood      ~100 FU-A packets of ~1400 bytes per IDR access unit (random slice
               data), as fast as the socket takes them.
    http       a web server: answers anything with HTTP/1.1 200 and HTML, then closes.
    silent     accepts connections and never answers.

Standard library only; run with the system python3:
    /usr/bin/python3 tests/peers/hostile_rtsp.py --port 8554 --mode garbage [--path /cam]
It prints "rtsp://127.0.0.1:8554/cam ready" once listening.
"""

import argparse
import base64
import contextlib
import functools
import itertools
import os
import random
import re
import socket
import struct
import threading
import time
from typing import Callable

EP_RE = re.compile(rb"\x00\x00(?=[\x00-\x03])")
POOL = os.urandom(1 << 22)  # random bytes to slice flood payloads from


class BitWriter:
    """Writes H.264 RBSP fields: u(n), ue(v), se(v), then rbsp_trailing_bits."""

    def __init__(self) -> None:
        self.value = 0
        self.bits = 0

    def u(self, n: int, *values: int) -> None:
        for v in values:
            assert 0 <= v < (1 << n)
            self.value = (self.value << n) | v
            self.bits += n

    def ue(self, *values: int) -> None:
        for v in values:
            code = v + 1
            self.u(2 * code.bit_length() - 1, code)  # leading zeros, then the code

    def se(self, *values: int) -> None:
        self.ue(*(2 * v - 1 if v > 0 else -2 * v for v in values))

    def rbsp(self) -> bytes:
        self.u(1, 1)
        self.u((-self.bits) % 8, 0)
        return self.value.to_bytes(self.bits // 8, "big")


def nal(header: int, rbsp: bytes) -> bytes:
    """A NAL unit: its header byte, then the RBSP with emulation prevention bytes."""
    return bytes([header]) + EP_RE.sub(b"\x00\x00\x03", rbsp)


def make_sps(width: int, height: int, profile: int, level: int) -> bytes:
    w_mbs, h_mbs = (width + 15) // 16, (height + 15) // 16
    b = BitWriter()
    # profile_idc, constraint_set flags (0+1: Constrained Baseline), level_idc
    b.u(8, profile, 0xC0 if profile == 66 else 0, level)
    b.ue(0)  # seq_parameter_set_id
    if profile == 100:
        b.ue(1, 0, 0)  # chroma_format_idc 4:2:0, bit_depth_luma/chroma_minus8
        b.u(1, 0, 0)  # qpprime_y_zero_transform_bypass_flag, seq_scaling_matrix_present_flag
    b.ue(0, 2, 1)  # log2_max_frame_num_minus4, pic_order_cnt_type, max_num_ref_frames
    b.u(1, 0)  # gaps_in_frame_num_value_allowed_flag
    b.ue(w_mbs - 1, h_mbs - 1)  # pic_width_in_mbs_minus1, pic_height_in_map_units_minus1
    b.u(1, 1, 1)  # frame_mbs_only_flag, direct_8x8_inference_flag
    crop = ((w_mbs * 16 - width) // 2, (h_mbs * 16 - height) // 2)  # in 2-pixel units
    b.u(1, int(any(crop)))  # frame_cropping_flag
    if any(crop):
        b.ue(0, crop[0], 0, crop[1])  # left, right, top, bottom offsets
    b.u(1, 0)  # vui_parameters_present_flag
    return nal(0x67, b.rbsp())


def make_pps() -> bytes:
    b = BitWriter()
    b.ue(0, 0)  # pic_parameter_set_id, seq_parameter_set_id
    b.u(1, 0, 0)  # entropy_coding_mode_flag (CAVLC), bottom_field_pic_order_in_frame_present
    b.ue(0, 0, 0)  # num_slice_groups_minus1, num_ref_idx_l0/l1_default_active_minus1
    b.u(1, 0)  # weighted_pred_flag
    b.u(2, 0)  # weighted_bipred_idc
    b.se(0, 0, 0)  # pic_init_qp_minus26, pic_init_qs_minus26, chroma_qp_index_offset
    # deblocking_filter_control_present, constrained_intra_pred, redundant_pic_cnt_present
    b.u(1, 1, 0, 0)
    return nal(0x68, b.rbsp())


def make_idr(data: bytes) -> bytes:
    """An IDR slice NAL unit: a valid I-slice header followed by `data` as slice data."""
    b = BitWriter()
    b.ue(0, 7, 0)  # first_mb_in_slice, slice_type I (all slices), pic_parameter_set_id
    b.u(4, 0)  # frame_num
    b.ue(0)  # idr_pic_id
    b.u(1, 0, 0)  # no_output_of_prior_pics_flag, long_term_reference_flag
    b.se(0)  # slice_qp_delta
    b.ue(0)  # disable_deblocking_filter_idc
    b.se(0, 0)  # slice_alpha_c0_offset_div2, slice_beta_offset_div2
    b.u(8 * len(data), int.from_bytes(data, "big"))
    return nal(0x65, b.rbsp())


AUD = nal(0x09, bytes([0x10]))  # primary_pic_type 0 + trailing bits
SPS_SMALL = make_sps(320, 180, 66, 30)
SPS_BIG = make_sps(10000, 10000, 100, 51)
PPS = make_pps()


def interleaved(channel: int, data: bytes) -> bytes:
    return struct.pack("!cBH", b"$", channel, len(data)) + data


class Rtp:
    """One RTP stream: payload type 96, constant SSRC, 90 kHz timestamps."""

    def __init__(self, channel: int) -> None:
        self.channel = channel
        self.seq = random.randint(1000, 60000)
        self.ts = random.getrandbits(32)
        self.ssrc = random.getrandbits(32)

    def frame(self, payload: bytes, marker: bool = False) -> bytes:
        header = struct.pack("!BBHII", 0x80, (0x80 if marker else 0) | 96, self.seq,
                             self.ts, self.ssrc)
        self.seq = (self.seq + 1) & 0xFFFF
        return interleaved(self.channel, header + payload)

    def fu_a(self, unit: bytes, size: int) -> bytes:
        """`unit` as FU-A fragments of `size` bytes; marker on the last."""
        indicator, kind = (unit[0] & 0xE0) | 28, unit[0] & 0x1F
        chunks = [unit[i:i + size] for i in range(1, len(unit), size)]
        out = []
        for i, chunk in enumerate(chunks):
            last = i == len(chunks) - 1
            fu_header = (0x80 if i == 0 else 0) | (0x40 if last else 0) | kind
            out.append(self.frame(bytes([indicator, fu_header]) + chunk, last))
        return b"".join(out)


def garbage_au(rtp: Rtp, n: int) -> bytes:
    out = []
    if n % 90 == 45:  # every 3 s: a frame that is not RTP (too short, or version 0)
        bad = os.urandom(3) if n % 180 == 45 else b"\x00" + os.urandom(15)
        out.append(interleaved(rtp.channel, bad))
    count = random.randint(2, 5)
    for i in range(count):
        body = os.urandom(random.randint(16, 1200))
        r = random.random()
        if r < 0.3:  # a plausible NAL header byte of a random type
            kind = random.choice((0, 1, 5, 6, 7, 8, 9, 24, 25, 28, 29, 31))
            body = bytes([0x60 | kind]) + body
        elif r < 0.6:  # a FU-A header with random start/end bits and type
            body = bytes([0x7C, random.randrange(4) << 6 | random.randrange(32)]) + body
        out.append(rtp.frame(body, i == count - 1))
    return b"".join(out)


def bigsps_au(rtp: Rtp, n: int) -> bytes:
    stap_a = bytes([0x78]) + b"".join(struct.pack("!H", len(u)) + u for u in (SPS_BIG, PPS))
    return rtp.frame(stap_a) + rtp.frame(make_idr(os.urandom(300)), True)


def keyframes_au(rtp: Rtp, n: int) -> bytes:
    return rtp.frame(AUD) + rtp.frame(SPS_SMALL) + rtp.frame(PPS, True)


def flood_au(rtp: Rtp, n: int) -> bytes:
    start = random.randrange(len(POOL) - 140_000)
    return rtp.fu_a(make_idr(POOL[start:start + 139_000]), 1398)


# mode -> (SPS in the SDP, access unit maker, access units per second; 0 = unpaced)
STREAMS: dict[str, tuple[bytes, Callable[[Rtp, int], bytes], int]] = {
    "garbage": (SPS_SMALL, garbage_au, 30),
    "bigsps": (SPS_BIG, bigsps_au, 30),
    "keyframes": (SPS_SMALL, keyframes_au, 30),
    "flood": (SPS_SMALL, flood_au, 0),
}
CONNECTIONS = itertools.count()
REASONS = {200: "OK", 461: "Unsupported Transport", 501: "Not Implemented"}


class RtspConnection:
    """One client connection: this thread reads and answers requests; PLAY starts a writer."""

    def __init__(self, conn: socket.socket, mode: str) -> None:
        self.conn, self.mode = conn, mode
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.session = "%016X" % random.getrandbits(64)
        self.phase = (0, 45, 135)[next(CONNECTIONS) % 3]  # where in the pattern to start
        self.rtp: Rtp | None = None
        self.writer: threading.Thread | None = None

    def send(self, data: bytes) -> None:
        with self.lock:
            self.conn.sendall(data)

    def reply(self, cseq: str, status: int, headers: list[str], body: bytes = b"") -> None:
        lines = [f"RTSP/1.0 {status} {REASONS[status]}", f"CSeq: {cseq}",
                 "Server: hostile-rtsp"] + headers
        if body:
            lines.append(f"Content-Length: {len(body)}")
        self.send(("\r\n".join(lines) + "\r\n\r\n").encode() + body)

    def handle(self, method: str, url: str, headers: dict[str, str]) -> bool:
        """Answers one request; returns False when the connection should close."""
        cseq = headers.get("cseq", "0")
        session = [f"Session: {self.session};timeout=60"]
        sps = STREAMS[self.mode][0]
        base = url if url.endswith("/") else url + "/"
        if method == "OPTIONS":
            methods = "OPTIONS, DESCRIBE, SETUP, PLAY, TEARDOWN, GET_PARAMETER"
            self.reply(cseq, 200, [f"Public: {methods}"])
        elif method == "DESCRIBE":
            sets = ",".join(base64.b64encode(u).decode() for u in (sps, PPS))
            sdp = ("v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=hostile\r\nc=IN IP4 0.0.0.0\r\nt=0 0\r\n"
                   "a=control:*\r\nm=video 0 RTP/AVP 96\r\na=rtpmap:96 H264/90000\r\n"
                   f"a=fmtp:96 packetization-mode=1;profile-level-id={sps[1:4].hex().upper()};"
                   f"sprop-parameter-sets={sets}\r\na=control:trackID=0\r\n")
            self.reply(cseq, 200, [f"Content-Base: {base}", "Content-Type: application/sdp"],
                       sdp.encode())
        elif method == "SETUP":
            transport = headers.get("transport", "")
            found = re.search(r"interleaved=(\d+)", transport)
            if "TCP" not in transport.upper() or not found:
                self.reply(cseq, 461, [])
                return True
            self.rtp = Rtp(int(found.group(1)))
            self.reply(cseq, 200, [f"Transport: {transport};ssrc={self.rtp.ssrc:08X}"] + session)
        elif method == "PLAY" and self.rtp is not None:
            track = url if url.rstrip("/").endswith("trackID=0") else base + "trackID=0"
            info = f"RTP-Info: url={track};seq={self.rtp.seq};rtptime={self.rtp.ts}"
            self.reply(cseq, 200, session + ["Range: npt=0.000-", info])
            if self.writer is None:
                self.writer = threading.Thread(target=self.write_stream, daemon=True)
                self.writer.start()
        elif method in ("GET_PARAMETER", "SET_PARAMETER", "PAUSE"):
            self.reply(cseq, 200, session)
        elif method == "TEARDOWN":
            self.reply(cseq, 200, session)
            return False
        else:
            self.reply(cseq, 501, [])
        return True

    def write_stream(self) -> None:
        assert self.rtp is not None
        _, make_au, fps = STREAMS[self.mode]
        start, n = time.monotonic(), 0
        with contextlib.suppress(OSError):  # the client went away
            while not self.stop.is_set():
                self.send(make_au(self.rtp, n + self.phase))
                self.rtp.ts = (self.rtp.ts + 3000) & 0xFFFFFFFF
                n += 1
                if fps:
                    time.sleep(max(0.0, start + n / fps - time.monotonic()))
        self.close()

    def close(self) -> None:
        """Ends both threads: the reader's recv and the writer's sendall fail or return."""
        self.stop.set()
        with contextlib.suppress(OSError):
            self.conn.shutdown(socket.SHUT_RDWR)

    def serve(self) -> None:
        buf = b""
        with contextlib.suppress(OSError, ValueError):
            while not self.stop.is_set():
                if buf.startswith(b"$"):  # interleaved data from the client (RTCP): skip
                    size = 4 + int.from_bytes(buf[2:4], "big")
                    if len(buf) >= max(4, size):
                        buf = buf[size:]
                        continue
                elif b"\r\n\r\n" in buf:
                    head, _, rest = buf.partition(b"\r\n\r\n")
                    lines = head.decode("latin-1").split("\r\n")
                    headers = {k.strip().lower(): v.strip() for k, _, v in
                               (line.partition(":") for line in lines[1:])}
                    length = int(headers.get("content-length", "0") or 0)
                    if len(rest) >= length:
                        buf = rest[length:]
                        parts = lines[0].split()
                        if len(parts) < 2 or not self.handle(parts[0], parts[1], headers):
                            break
                        continue
                elif len(buf) > 65536:
                    break
                data = self.conn.recv(65536)
                if not data:
                    break
                buf += data
        self.close()
        if self.writer is not None:
            self.writer.join()
        self.conn.close()


def serve_http(conn: socket.socket) -> None:
    body = (b"<!DOCTYPE html>\n<html><head><title>Not RTSP</title></head>"
            b"<body><h1>It works!</h1><p>This is a web server.</p></body></html>\n")
    with contextlib.suppress(OSError):
        conn.settimeout(3)
        conn.recv(65536)  # the request, or its beginning: answered the same anyway
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nConnection: close\r\n"
                     + f"Content-Length: {len(body)}\r\n\r\n".encode() + body)
    conn.close()


def serve_silent(conn: socket.socket) -> None:
    with contextlib.suppress(OSError):
        while conn.recv(65536):
            pass
    conn.close()


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--mode", required=True, choices=list(STREAMS) + ["http", "silent"])
    p.add_argument("--path", default="/cam")
    args = p.parse_args()
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", args.port))
    listener.listen(16)
    print(f"rtsp://127.0.0.1:{args.port}{args.path} ready", flush=True)
    try:
        while True:
            conn, _ = listener.accept()
            if args.mode in STREAMS:
                target: Callable[[], None] = RtspConnection(conn, args.mode).serve
            else:
                handler = serve_http if args.mode == "http" else serve_silent
                target = functools.partial(handler, conn)
            threading.Thread(target=target, daemon=True).start()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
