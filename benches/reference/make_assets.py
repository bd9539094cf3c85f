#!/usr/bin/env python3
"""Generates the image assets of the reference scene (see README.md beside this file).

Usage: python3 benches/reference/make_assets.py [OUT_DIR]   (default: target/reference-assets)

Writes, skipping any file that already exists (so it is cheap to call before every run):
  background.jpg  1920x1080, one frame of ffmpeg's `mandelbrot` source (deterministic)
  logo.png        400x400  filled circle with a soft edge on transparent
  badge.png       360x180  rounded box, semi-transparent fill, opaque border
  sponsor.png     500x200  diagonal stripes and discs with partial alpha
  bar.png         1600x160 the `bar` shape   (linear #1e3a8a -> #0ea5e9, left to right)
  glow.png        320x320  the `glow` shape  (radial #facc15 -> #facc1500, ellipse)
  strip.png       600x90   the `strip` shape (linear #ef4444 -> #7f1d1d, top to bottom,
                           rounded rect, corner radius 20)
  badge_pad.png   396x270  badge.png centred on a transparent margin, for GStreamer's
                           `rotate`, which keeps the frame size (396x270 holds the
                           360x180 box turned by 15 degrees)

bar/glow/strip are what our compositor draws as vector shapes; ffmpeg and GStreamer have
no shape primitive, so they overlay these PNGs. The gradients follow our geometry
(host/scene/src/draw.rs `fill_of`): a linear gradient runs between the box edges through
its centre, a radial one has its centre at the box centre and radius max(w, h) / 2, and
colours are interpolated unpremultiplied. Layer opacity (bar: 0.9) is NOT baked in; the
pipelines apply it per frame like ours does.

Standard library only: PNGs are written with zlib + struct; the JPEG comes from ffmpeg.
"""
import math
import os
import struct
import subprocess
import sys
import zlib

# Supersampling grid per axis for anti-aliased shape edges (4x4 = 16 samples per pixel).
SS = 4


def write_png(path, width, height, rgba):
    """Writes an 8-bit RGBA PNG. `rgba` is a bytes-like of width*height*4 bytes,
    unpremultiplied, rows top to bottom."""
    stride = width * 4
    raw = bytearray()
    for y in range(height):
        raw.append(0)  # filter type 0 (none) for every scanline
        raw += rgba[y * stride:(y + 1) * stride]

    def chunk(tag, data):
        body = tag + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 6, 0, 0, 0)  # 8 bit, colour type 6 = RGBA
    png = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(bytes(raw), 9))
    png += chunk(b"IEND", b"")
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(png)
    os.replace(tmp, path)  # never leave a half-written asset behind


def hex_rgba(color):
    """'#rrggbb' or '#rrggbbaa' -> (r, g, b, a) as floats 0..1."""
    c = color.lstrip("#")
    if len(c) == 6:
        c += "ff"
    return tuple(int(c[i:i + 2], 16) / 255.0 for i in (0, 2, 4, 6))


def lerp_color(c0, c1, t):
    t = min(1.0, max(0.0, t))
    return tuple(a + (b - a) * t for a, b in zip(c0, c1))


def to_byte(v):
    return max(0, min(255, int(round(v * 255.0))))


def render(width, height, shader):
    """Evaluates shader(x, y) -> (r, g, b, a) floats at each pixel centre."""
    buf = bytearray(width * height * 4)
    i = 0
    for y in range(height):
        py = y + 0.5
        for x in range(width):
            r, g, b, a = shader(x + 0.5, py)
            if a <= 0.0:
                i += 4  # fully transparent: leave 0,0,0,0
                continue
            buf[i] = to_byte(r)
            buf[i + 1] = to_byte(g)
            buf[i + 2] = to_byte(b)
            buf[i + 3] = to_byte(a)
            i += 4
    return buf


def rounded_rect_coverage(x, y, w, h, radius):
    """Fraction (0..1) of the pixel centred at (x, y) inside a w*h rounded rectangle at 0,0.
    Exact 1/0 away from the corners; supersampled within the corner squares."""
    # Pixel centres are at half-integers and the box edges at integers here, so a pixel
    # along a straight edge is either wholly inside or wholly outside.
    if x < 0 or y < 0 or x > w or y > h:
        return 0.0
    if radius <= 0:
        return 1.0
    # Distance of the pixel from the nearest corner centre, if it lies in a corner square.
    cx = radius if x < radius + 1 else (w - radius if x > w - radius - 1 else None)
    cy = radius if y < radius + 1 else (h - radius if y > h - radius - 1 else None)
    if cx is None or cy is None:
        return 1.0
    inside = 0
    for sy in range(SS):
        for sx in range(SS):
            px = x - 0.5 + (sx + 0.5) / SS
            py = y - 0.5 + (sy + 0.5) / SS
            qx = min(max(px, radius), w - radius)
            qy = min(max(py, radius), h - radius)
            if (px - qx) ** 2 + (py - qy) ** 2 <= radius * radius:
                inside += 1
    return inside / (SS * SS)


def ellipse_coverage(x, y, w, h):
    """Fraction of the pixel centred at (x, y) inside the ellipse inscribed in w*h."""
    rx, ry = w / 2.0, h / 2.0
    d = ((x - rx) / rx) ** 2 + ((y - ry) / ry) ** 2
    # Clearly inside / outside: skip the supersampling (1.5 px band around the edge).
    band = 3.0 / min(rx, ry)
    if d < 1 - band:
        return 1.0
    if d > 1 + band:
        return 0.0
    inside = 0
    for sy in range(SS):
        for sx in range(SS):
            px = x - 0.5 + (sx + 0.5) / SS
            py = y - 0.5 + (sy + 0.5) / SS
            if ((px - rx) / rx) ** 2 + ((py - ry) / ry) ** 2 <= 1.0:
                inside += 1
    return inside / (SS * SS)


def linear_t(x, y, w, h, angle_deg):
    """Position 0..1 along our linear gradient: from (cx-dx, cy-dy) to (cx+dx, cy+dy) with
    (dx, dy) = (cos a * w/2, sin a * h/2), as in host/scene/src/draw.rs."""
    s, c = math.sin(math.radians(angle_deg)), math.cos(math.radians(angle_deg))
    dx, dy = c * w / 2.0, s * h / 2.0
    x0, y0 = w / 2.0 - dx, h / 2.0 - dy
    vx, vy = 2 * dx, 2 * dy
    return ((x - x0) * vx + (y - y0) * vy) / (vx * vx + vy * vy)


# ---------------------------------------------------------------- gradient shapes

def make_bar():
    """bar: rect 1600x160, linear 0 deg #1e3a8a -> #0ea5e9 (opacity 0.9 applied by the pipeline)."""
    w, h = 1600, 160
    c0, c1 = hex_rgba("#1e3a8a"), hex_rgba("#0ea5e9")
    return w, h, render(w, h, lambda x, y: lerp_color(c0, c1, linear_t(x, y, w, h, 0)))


def make_glow():
    """glow: ellipse 320x320, radial #facc15 (centre) -> #facc1500 (radius 160)."""
    w, h = 320, 320
    c0, c1 = hex_rgba("#facc15"), hex_rgba("#facc1500")
    radius = max(w, h) / 2.0

    def shade(x, y):
        cov = ellipse_coverage(x, y, w, h)
        if cov == 0.0:
            return (0, 0, 0, 0)
        r, g, b, a = lerp_color(c0, c1, math.hypot(x - w / 2.0, y - h / 2.0) / radius)
        return (r, g, b, a * cov)

    return w, h, render(w, h, shade)


def make_strip():
    """strip: rounded rect 600x90 radius 20, linear 90 deg #ef4444 -> #7f1d1d (top to bottom)."""
    w, h, radius = 600, 90, 20
    c0, c1 = hex_rgba("#ef4444"), hex_rgba("#7f1d1d")

    def shade(x, y):
        cov = rounded_rect_coverage(x, y, w, h, radius)
        r, g, b, a = lerp_color(c0, c1, linear_t(x, y, w, h, 90))
        return (r, g, b, a * cov)

    return w, h, render(w, h, shade)


# ---------------------------------------------------------------- alpha images

def smoothstep(e0, e1, v):
    t = min(1.0, max(0.0, (v - e0) / (e1 - e0)))
    return t * t * (3 - 2 * t)


def make_logo():
    """logo: 400x400, a green disc (radius 180) with a 24 px soft edge, a lighter centre and
    a white ring, on transparent."""
    w = h = 400
    outer, soft = 180.0, 24.0
    green, light, white = hex_rgba("#16a34a"), hex_rgba("#86efac"), hex_rgba("#ffffff")

    def shade(x, y):
        d = math.hypot(x - 200, y - 200)
        alpha = 1.0 - smoothstep(outer - soft, outer, d)
        if alpha <= 0.0:
            return (0, 0, 0, 0)
        r, g, b, _ = lerp_color(light, green, d / outer)
        ring = 1.0 - smoothstep(4.0, 7.0, abs(d - 120.0))  # 8 px white ring at radius 120
        r, g, b, _ = lerp_color((r, g, b, 1), white, ring)
        return (r, g, b, alpha)

    return w, h, render(w, h, shade)


def make_badge(width=360, height=180, pad_x=0, pad_y=0):
    """badge: 360x180 rounded box (radius 30), dark fill at 65 % alpha, 8 px opaque amber
    border, an opaque amber dot at the top left so the rotation is easy to see.
    pad_x/pad_y add a transparent margin on each side (for badge_pad.png)."""
    box_w, box_h, radius, border = width, height, 30.0, 8.0
    fill, amber = hex_rgba("#0f172a"), hex_rgba("#f59e0b")

    def shade(x, y):
        x, y = x - pad_x, y - pad_y
        cov = rounded_rect_coverage(x, y, box_w, box_h, radius)
        if cov == 0.0:
            return (0, 0, 0, 0)
        # Inside the border ring: the inner rounded rect, shrunk by `border`.
        inner = rounded_rect_coverage(x - border, y - border, box_w - 2 * border,
                                      box_h - 2 * border, radius - border)
        dot = 1.0 - smoothstep(21.0, 23.0, math.hypot(x - 50, y - 50))
        fill_a = 0.65 * inner
        ring_a = 1.0 - inner
        # Border (opaque) over the translucent fill, then the dot over both.
        a = ring_a + fill_a * (1 - ring_a)
        col = lerp_color(fill, amber, ring_a / a if a > 0 else 0)
        a2 = dot + a * (1 - dot)
        col = lerp_color(col, amber, dot / a2 if a2 > 0 else 0)
        return (col[0], col[1], col[2], a2 * cov)

    return width + 2 * pad_x, height + 2 * pad_y, render(width + 2 * pad_x, height + 2 * pad_y, shade)


def make_sponsor():
    """sponsor: 500x200, diagonal stripes alternating magenta (80 % alpha) and cyan (40 %),
    a fully transparent gutter between them, and three white discs at 90 % alpha."""
    w, h = 500, 200
    magenta, cyan, white = hex_rgba("#d946ef"), hex_rgba("#22d3ee"), hex_rgba("#ffffff")
    discs = [(110, 100, 60), (250, 100, 45), (390, 100, 60)]

    def shade(x, y):
        for cx, cy, r in discs:
            d = math.hypot(x - cx, y - cy)
            if d < r + 1:
                a = 0.9 * (1.0 - smoothstep(r - 1, r + 1, d))
                # Edge of the disc: blend over the stripe below (approximately).
                if a > 0.0:
                    return (white[0], white[1], white[2], a)
        phase = (x + y) % 60.0  # 60 px period along the diagonal
        if phase < 25:
            return (magenta[0], magenta[1], magenta[2], 0.8)
        if 30 <= phase < 55:
            return (cyan[0], cyan[1], cyan[2], 0.4)
        return (0, 0, 0, 0)

    return w, h, render(w, h, shade)


def make_background(path):
    """One deterministic 1920x1080 frame of ffmpeg's mandelbrot source, as a JPEG."""
    tmp = path + ".tmp.jpg"
    subprocess.run(
        ["ffmpeg", "-hide_banner", "-loglevel", "error", "-y",
         "-f", "lavfi", "-i", "mandelbrot=s=1920x1080:start_scale=0.02:end_scale=0.02",
         "-frames:v", "1", "-q:v", "3", "-pix_fmt", "yuvj420p", tmp],
        check=True)
    os.replace(tmp, path)


PNGS = {
    "logo.png": make_logo,
    "badge.png": make_badge,
    "sponsor.png": make_sponsor,
    "bar.png": make_bar,
    "glow.png": make_glow,
    "strip.png": make_strip,
    # 18 px left/right and 45 px top/bottom margin: 396x270 >= the 394.3x267.0 bounding box
    # of 360x180 turned by 15 degrees.
    "badge_pad.png": lambda: make_badge(pad_x=18, pad_y=45),
}


def make_assets(out_dir):
    """Creates every missing asset in out_dir; returns the directory."""
    os.makedirs(out_dir, exist_ok=True)
    bg = os.path.join(out_dir, "background.jpg")
    if not os.path.exists(bg):
        make_background(bg)
    for name, maker in PNGS.items():
        path = os.path.join(out_dir, name)
        if os.path.exists(path):
            continue
        w, h, rgba = maker()
        write_png(path, w, h, rgba)
    return out_dir


def main():
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(root, "target", "reference-assets")
    make_assets(out)
    print(out)


if __name__ == "__main__":
    main()
