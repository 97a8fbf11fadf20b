"""Small charts for the training notebooks (matplotlib, no pyplot state).

Each function returns a ``Plot``: a notebook shows its PNG, and its text form is a
one-line description of what is drawn, built from the numbers that are deterministic
(row counts) and never from timings. nbval compares that text and skips the PNG, so a
chart of latencies stays a stable, tested output.
"""

from __future__ import annotations

import io
import statistics
from collections.abc import Mapping, Sequence

from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

BLUE, LIGHT, AMBER, GREEN = "#1f5fa8", "#c5d9f1", "#c77c00", "#2e7d32"


class Plot:
    """A figure a notebook displays as PNG, described in one deterministic line."""

    def __init__(self, figure: Figure, text: str) -> None:
        self.figure = figure
        self.text = text

    def _repr_png_(self) -> bytes:
        buffer = io.BytesIO()
        self.figure.savefig(buffer, format="png", dpi=80, bbox_inches="tight")
        return buffer.getvalue()

    def __repr__(self) -> str:
        return self.text


def rows_by_role(visible: Mapping[str, int], total: int, title: str) -> Plot:
    """Horizontal bars: rows each role may see (dark) out of the table's rows (light)."""
    roles = list(visible)
    figure = Figure(figsize=(6.5, 0.5 + 0.45 * len(roles)))
    axes = figure.subplots()
    positions = range(len(roles))
    axes.barh(positions, [total] * len(roles), color=LIGHT)
    axes.barh(positions, [visible[r] for r in roles], color=BLUE)
    for y, role in enumerate(roles):
        axes.text(visible[role], y, f" {visible[role]:,}", va="center", fontsize=9)
    axes.set_yticks(list(positions), roles)
    axes.invert_yaxis()
    axes.set_xlim(0, total * 1.15)
    axes.set_xlabel("rows")
    axes.set_title(f"{title}\n(dark: visible to the role; light: the whole table)", fontsize=10)
    figure.tight_layout()
    counts = "; ".join(f"{r} {visible[r]:,}" for r in roles)
    return Plot(figure, f"bar chart, rows visible of {total:,}: {counts}")


def cache_latency(samples: Mapping[str, Sequence[float]], title: str) -> Plot:
    """Each request's time (ms) per cache outcome, with the median marked: a log scale,
    since a hit is one Redis read and a miss a table scan."""
    labels = list(samples)
    figure = Figure(figsize=(6.5, 2.6))
    axes = figure.subplots()
    colours = {"MISS": AMBER, "HIT": GREEN}
    for x, label in enumerate(labels):
        values = list(samples[label])
        axes.scatter([x] * len(values), values, color=colours.get(label, BLUE), alpha=0.7)
        median = statistics.median(values)
        axes.hlines(median, x - 0.25, x + 0.25, color="black")
        axes.text(x + 0.28, median, f"median {median:.1f} ms", va="center", fontsize=9)
    axes.set_xticks(range(len(labels)), labels)
    axes.set_xlim(-0.5, len(labels) - 0.2)
    axes.set_yscale("log")
    axes.yaxis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
    axes.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    axes.yaxis.set_minor_formatter(NullFormatter())
    axes.set_ylabel("ms per request")
    axes.set_title(title, fontsize=10)
    figure.tight_layout()
    sizes = ", ".join(f"{len(samples[label])} {label}" for label in labels)
    return Plot(figure, f"latency chart (ms, log scale): {sizes} requests")
