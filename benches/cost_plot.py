#!/usr/bin/env python3
"""Plots the raster cost estimator's calibration: estimated against measured rasterizing
time, log-log, one point per case and canvas, from the CSV that
`cargo bench -p stream-manager --bench cost -- --calibrate CSV` writes.

    python3 benches/cost_plot.py [CSV] [PNG]

Defaults: target/cost-calibration.csv and benches/cost-calibration.png. Needs matplotlib
(`pip install --user matplotlib`).
"""

import csv
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
src = Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "target/cost-calibration.csv"
out = Path(sys.argv[2]) if len(sys.argv) > 2 else ROOT / "benches/cost-calibration.png"

rows = list(csv.DictReader(src.open()))
style = {
    "synthetic": ("o", "tab:blue", "synthetic"),
    "template": ("s", "tab:green", "bundled templates"),
    "hostile": ("^", "tab:red", "hostile guest (reduced counts)"),
    "scene": ("D", "tab:purple", "reference scene, one list"),
}
fig, ax = plt.subplots(figsize=(9, 8))
lo, hi = float("inf"), 0.0
for group, (marker, color, label) in style.items():
    pts = [r for r in rows if r["group"] == group]
    for big in (False, True):
        sel = [r for r in pts if (int(r["width"]) > 960) == big]
        if not sel:
            continue
        x = [max(float(r["measured_ns"]), 1.0) / 1e6 for r in sel]
        y = [max(float(r["estimate_ns"]), 1.0) / 1e6 for r in sel]
        lo, hi = min(lo, *x, *y), max(hi, *x, *y)
        ax.scatter(
            x,
            y,
            marker=marker,
            s=36,
            facecolors=color if big else "none",
            edgecolors=color,
            label=f"{label}, {'1080p' if big else '540p (320×180: e2e size)'}",
        )
lo, hi = lo / 2, hi * 2
ax.plot([lo, hi], [lo, hi], "k-", lw=1, label="estimate = measured")
ax.plot([lo, hi], [3 * lo, 3 * hi], "k--", lw=0.8, label="×3 and ×0.5")
ax.plot([lo, hi], [0.5 * lo, 0.5 * hi], "k--", lw=0.8)
for share, name in ((5.5, "30 fps share (3 layers)"), (2.7, "60 fps share")):
    ax.axhline(share, color="grey", lw=0.6, ls=":")
    ax.text(lo * 1.2, share * 1.08, name, fontsize=7, color="grey")
ax.set_xscale("log")
ax.set_yscale("log")
ax.set_xlim(lo, hi)
ax.set_ylim(lo, hi)
ax.set_xlabel("measured rasterize time, ms (fastest of several runs, glyph caches warm)")
ax.set_ylabel("cost::estimate, ms")
ax.set_title("cost::estimate vs measured rasterize time, one point per case and canvas")
ax.grid(True, which="both", lw=0.3, alpha=0.5)
ax.legend(fontsize=7, loc="upper left")
fig.tight_layout()
fig.savefig(out, dpi=110)
print(f"wrote {out} ({len(rows)} cases)")
