"""Learning curves: matplotlib PNGs for Markdown, inline SVG for HTML, sparklines for the terminal.

matplotlib is imported only when a PNG is asked for (it costs half a second)
and always with the Agg backend, so plotting works on headless machines and
Colab alike. The SVG is written by hand from the numbers: small, identical
for identical data, and free of any user text.
"""

from __future__ import annotations

import html
import io
import math
import re
from pathlib import Path
from typing import Any, Sequence

Series = tuple[str, list[tuple[float, float]]]  # (label, [(x, val_acc)])
# matplotlib's tab20, dark shades first: one colour per run, the same in every chart.
PALETTE = (
    "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf",
    "#aec7e8", "#ffbb78", "#98df8a", "#ff9896", "#c5b0d5", "#c49c94", "#f7b6d2", "#c7c7c7", "#dbdb8d", "#9edae5",
)
SPARKS = "▁▂▃▄▅▆▇█"
TITLE_CHARS = 60  # a title longer than this is wrapped onto a second line, then shortened


def safe_name(text: str) -> str:
    """A file name from a run label ("7a", "15")."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text).strip("._") or "run"


def link_to(link: str, name: str) -> str:
    """How a document refers to the picture `name` in the plots folder it calls `link`."""
    return f"{link.rstrip('/')}/{name}" if link else name


def run_colours(runs: Sequence[Any]) -> dict[int, str]:
    """Each run's colour, by its place in the report: the same run is the same colour in every chart."""
    return {run.id: PALETTE[i % len(PALETTE)] for i, run in enumerate(runs)}


def fit_title(text: str, width: int = TITLE_CHARS) -> str:
    """A title that fits the figure: wrapped at a space onto two lines, then cut with an ellipsis."""
    import textwrap

    lines = textwrap.wrap(" ".join(text.split()), width) or [""]
    if len(lines) > 2:
        lines = [lines[0], textwrap.shorten(" ".join(lines[1:]), width, placeholder=" …")]
    return "\n".join(lines)


def _integer_epochs(ax) -> None:
    from matplotlib.ticker import MaxNLocator

    ax.xaxis.set_major_locator(MaxNLocator(integer=True))


def series(run: Any, x: str = "epoch") -> Series:
    """Val accuracy of a run against its epoch (or elapsed seconds with x="elapsed_s")."""
    points = [
        (float(getattr(e, x)), float(e.val_acc))
        for e in run.epochs
        if e.val_acc is not None and getattr(e, x) is not None
    ]
    return f"Run {run.display_label}", points


def pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_figure(fig, path: Path) -> None:
    """The figure as a PNG at `path`, drawn in memory and written by the one output path: never
    onto a database or through a link to one, never into a FIFO or a device (speedrun.outputs)."""
    from speedrun.outputs import write_output

    image = io.BytesIO()
    fig.savefig(image, format="png", dpi=100, metadata={"Software": None})
    write_output(image.getvalue(), path, force=True, what="plot")


def learning_curve_png(run: Any, path: Path, *, colour: str = PALETTE[0]) -> Path:
    """Val (and train) accuracy per epoch on the left axis, losses on the right; the
    legend below the axes, where it covers no line."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6.4, 4.0))
    try:
        epochs = run.epochs
        handles = []
        for attr, label, style in (("val_acc", "val acc", "-o"), ("train_acc", "train acc", "--")):
            pts = [(e.epoch, getattr(e, attr)) for e in epochs if getattr(e, attr) is not None]
            if pts:
                handles += ax.plot(*zip(*pts), style, label=label, markersize=3, color=colour)
        ax.set_xlabel("epoch")
        ax.set_ylabel("accuracy (%)")
        _integer_epochs(ax)
        losses = [(attr, [(e.epoch, getattr(e, attr)) for e in epochs if getattr(e, attr) is not None])
                  for attr in ("train_loss", "val_loss")]
        if any(pts for _, pts in losses):
            right = ax.twinx()
            for (attr, pts), color in zip(losses, ("#7f7f7f", "#bcbd22")):
                if pts:
                    handles += right.plot(*zip(*pts), ":", color=color, label=attr.replace("_", " "))
            right.set_ylabel("loss")
        if handles:
            fig.legend(handles=handles, loc="lower center", ncol=len(handles), fontsize="small", frameon=False)
        ax.grid(alpha=0.3)
        ax.set_title(fit_title(f"Run {run.display_label}: {run.title or ''}".rstrip(": ")), fontsize="medium")
        fig.tight_layout(rect=(0, 0.07, 1, 1))
        save_figure(fig, path)
    finally:
        plt.close(fig)
    return path


def overlay_png(
    runs: Sequence[Any], path: Path, *, title: str = "", x: str = "epoch", colours: Sequence[str] | None = None
) -> Path:
    """Val accuracy curves of several runs on one axis, the legend to its right."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(7.2, 3.8))
    try:
        for i, run in enumerate(runs):
            label, pts = series(run, x)
            if pts:
                colour = colours[i] if colours is not None else PALETTE[i % len(PALETTE)]
                ax.plot(*zip(*pts), "-o", markersize=2, label=label, color=colour)
        ax.set_xlabel("epoch" if x == "epoch" else "training time (s)")
        ax.set_ylabel("val accuracy (%)")
        if x == "epoch":
            _integer_epochs(ax)
        ax.grid(alpha=0.3)
        if len(runs) <= 20:
            ax.legend(fontsize="small", loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0.0, frameon=False)
        if title:
            ax.set_title(fit_title(title), fontsize="medium")
        fig.tight_layout()
        save_figure(fig, path)
    finally:
        plt.close(fig)
    return path


def _epoch_ticks(x0: float, x1: float, most: int = 10) -> list[int]:
    """Whole epochs between x0 and x1, at most `most` of them, evenly spaced."""
    first, last = math.ceil(x0), math.floor(x1)
    if last < first:
        return []
    step = max(1, math.ceil((last - first) / (most - 1))) if last > first else 1
    return list(range(first, last + 1, step))


def curves_svg(
    all_series: Sequence[Series],
    width: int = 480,
    height: int = 200,
    *,
    colours: Sequence[str] | None = None,
    legend: bool = False,
) -> str:
    """An inline SVG line chart of val-accuracy series against whole epochs.

    Each point carries a `<title>` (its run, epoch and value: what a browser shows on
    hover); with `legend`, the runs' names stand to the right of the plot, in their
    colours. Labels are escaped; the rest is numbers.
    """
    points = [p for _, pts in all_series for p in pts]
    if not points:
        return ""
    legend_w = 110 if legend else 0
    pad_l, pad_r, pad_t, pad_b = 44, 10 + legend_w, 10, 28
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
        f'viewBox="0 0 {width} {height}" role="img" aria-label="validation accuracy per epoch">',
        f'<rect x="{pad_l}" y="{pad_t}" width="{width - pad_l - pad_r}" height="{height - pad_t - pad_b}" '
        'fill="none" stroke="#ccc"/>',
        f'<text x="2" y="{pad_t + 10}" font-size="10">{y1:.1f}%</text>',
        f'<text x="2" y="{height - pad_b}" font-size="10">{y0:.1f}%</text>',
        f'<text x="{(pad_l + width - pad_r) / 2:.0f}" y="{height - 2}" font-size="10" text-anchor="middle">epoch</text>',
    ]
    for tick in _epoch_ticks(x0, x1):
        parts.append(f'<text x="{sx(tick):.1f}" y="{height - pad_b + 12}" font-size="10" text-anchor="middle">{tick}</text>')
    for i, (label, pts) in enumerate(all_series):
        if not pts:
            continue
        colour = colours[i] if colours is not None else PALETTE[i % len(PALETTE)]
        name = html.escape(label)
        coords = " ".join(f"{sx(x):.1f},{sy(y):.1f}" for x, y in pts)
        parts.append(f'<g class="series"><title>{name}</title>')
        parts.append(f'<polyline fill="none" stroke="{colour}" stroke-width="1.5" points="{coords}"/>')
        for x, y in pts:
            parts.append(
                f'<circle cx="{sx(x):.1f}" cy="{sy(y):.1f}" r="2.5" fill="{colour}">'
                f"<title>{name}, epoch {x:g}: {y:.2f}%</title></circle>"
            )
        parts.append("</g>")
        if legend:
            ly = pad_t + 6 + 14 * i
            lx = width - legend_w + 4
            parts.append(
                f'<g class="legend"><rect x="{lx}" y="{ly - 7}" width="10" height="3" fill="{colour}"/>'
                f'<text x="{lx + 14}" y="{ly - 2}" font-size="10">{name}</text></g>'
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
