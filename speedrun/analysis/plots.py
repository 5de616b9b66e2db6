"""Learning curves: matplotlib PNGs for Markdown, inline SVG for HTML, sparklines for the terminal.

matplotlib is imported only when a PNG is asked for (it costs half a second)
and always with the Agg backend, so plotting works on headless machines and
Colab alike. The SVG is written by hand from the numbers: small, identical
for identical data, and free of any user text.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Sequence

from speedrun.errors import SpeedrunError

Series = tuple[str, list[tuple[float, float]]]  # (label, [(x, val_acc)])
PALETTE = ("#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf")
SPARKS = "▁▂▃▄▅▆▇█"


def safe_name(text: str) -> str:
    """A file name from a run label ("7a", "15")."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text).strip("._") or "run"


def series(run: Any, x: str = "epoch") -> Series:
    """Val accuracy of a run against its epoch (or elapsed seconds with x="elapsed_s")."""
    points = [
        (float(getattr(e, x)), float(e.val_acc))
        for e in run.epochs
        if e.val_acc is not None and getattr(e, x) is not None
    ]
    return f"Run {run.display_label}", points


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path: Path) -> None:
    try:
        fig.savefig(path, dpi=100, metadata={"Software": None})
    except OSError as exc:
        raise SpeedrunError(f"cannot write plot {path}: {exc.strerror or exc}") from None


def learning_curve_png(run: Any, path: Path) -> Path:
    """Val (and train) accuracy per epoch on the left axis, losses on the right."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6.4, 3.6))
    try:
        epochs = run.epochs
        for attr, label, style in (("val_acc", "val acc", "-o"), ("train_acc", "train acc", "--")):
            pts = [(e.epoch, getattr(e, attr)) for e in epochs if getattr(e, attr) is not None]
            if pts:
                ax.plot(*zip(*pts), style, label=label, markersize=3)
        ax.set_xlabel("epoch")
        ax.set_ylabel("accuracy (%)")
        losses = [(attr, [(e.epoch, getattr(e, attr)) for e in epochs if getattr(e, attr) is not None])
                  for attr in ("train_loss", "val_loss")]
        if any(pts for _, pts in losses):
            right = ax.twinx()
            for (attr, pts), color in zip(losses, ("#7f7f7f", "#bcbd22")):
                if pts:
                    right.plot(*zip(*pts), ":", color=color, label=attr.replace("_", " "))
            right.set_ylabel("loss")
            right.legend(loc="center right", fontsize="small")
        ax.legend(loc="lower right", fontsize="small")
        ax.grid(alpha=0.3)
        ax.set_title(f"Run {run.display_label}", fontsize="medium")
        fig.tight_layout()
        _save(fig, path)
    finally:
        plt.close(fig)
    return path


def overlay_png(runs: Sequence[Any], path: Path, *, title: str = "", x: str = "epoch") -> Path:
    """Val accuracy curves of several runs on one axis."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6.4, 3.6))
    try:
        for run in runs:
            label, pts = series(run, x)
            if pts:
                ax.plot(*zip(*pts), "-o", markersize=2, label=label)
        ax.set_xlabel("epoch" if x == "epoch" else "training time (s)")
        ax.set_ylabel("val accuracy (%)")
        ax.grid(alpha=0.3)
        if len(runs) <= 12:
            ax.legend(fontsize="small")
        if title:
            ax.set_title(title, fontsize="medium")
        fig.tight_layout()
        _save(fig, path)
    finally:
        plt.close(fig)
    return path


def curves_svg(all_series: Sequence[Series], width: int = 480, height: int = 200) -> str:
    """An inline SVG line chart of val-accuracy series; numbers only, no user text."""
    points = [p for _, pts in all_series for p in pts]
    if not points:
        return ""
    pad_l, pad_r, pad_t, pad_b = 40, 10, 10, 24
    x0, x1 = min(p[0] for p in points), max(p[0] for p in points)
    y0, y1 = min(p[1] for p in points), max(p[1] for p in points)
    if x1 == x0:
        x1 = x0 + 1
    if y1 == y0:
        y0, y1 = y0 - 1, y1 + 1

    def sx(x: float) -> float:
        return pad_l + (x - x0) / (x1 - x0) * (width - pad_l - pad_r)

    def sy(y: float) -> float:
        return height - pad_b - (y - y0) / (y1 - y0) * (height - pad_t - pad_b)

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" role="img" aria-label="validation accuracy curves">',
        f'<rect x="{pad_l}" y="{pad_t}" width="{width - pad_l - pad_r}" height="{height - pad_t - pad_b}" '
        'fill="none" stroke="#ccc"/>',
        f'<text x="2" y="{pad_t + 10}" font-size="10">{y1:.1f}%</text>',
        f'<text x="2" y="{height - pad_b}" font-size="10">{y0:.1f}%</text>',
        f'<text x="{pad_l}" y="{height - 6}" font-size="10">{x0:g}</text>',
        f'<text x="{width - pad_r}" y="{height - 6}" font-size="10" text-anchor="end">{x1:g}</text>',
    ]
    for i, (_, pts) in enumerate(all_series):
        if not pts:
            continue
        coords = " ".join(f"{sx(x):.1f},{sy(y):.1f}" for x, y in pts)
        parts.append(
            f'<polyline fill="none" stroke="{PALETTE[i % len(PALETTE)]}" stroke-width="1.5" points="{coords}"/>'
        )
    parts.append("</svg>")
    return "".join(parts)


def sparkline(values: Sequence[float | None], low: float, high: float) -> str:
    """One character per value on a shared scale; a gap for a missing value."""
    span = high - low
    out = []
    for v in values:
        if v is None:
            out.append(" ")
        elif span <= 0:
            out.append(SPARKS[-1])
        else:
            out.append(SPARKS[min(len(SPARKS) - 1, max(0, int((v - low) / span * (len(SPARKS) - 1) + 0.5)))])
    return "".join(out)
