"""Charts for the pages, drawn on the server: the geometry of bar charts and histograms, which a
template turns into inline SVG (so a chart needs no JavaScript and every label is escaped there)."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from web import readable

WIDTH = 640
LABEL_WIDTH = 220
ROW = 18
MAX_BARS = 30


@dataclass(frozen=True)
class Bar:
    label: str
    text: str  # the value as shown
    x: float
    y: float
    width: float
    height: float
    negative: bool = False
    series: str = ""  # a compared histogram's: "training" or "live" (its colour)


@dataclass(frozen=True)
class Chart:
    title: str
    width: int
    height: int
    bars: tuple[Bar, ...]
    zero: float  # x of the value 0 (bar charts); the x axis's labels (histograms) below
    axis: tuple[tuple[float, str], ...] = ()
    note: str = ""


def bar_chart(title: str, items: Sequence[tuple[str, float]], limit: int = MAX_BARS) -> Chart:
    """Horizontal bars, largest magnitude first (at most limit of them), signed around a zero
    line when any value is negative: coefficients or feature importances."""
    ranked = sorted(items, key=lambda item: -abs(item[1]))[:limit]
    span = max((abs(v) for _, v in ranked), default=0.0) or 1.0
    signed = any(v < 0 for _, v in ranked)
    plot = WIDTH - LABEL_WIDTH - 70  # room for the value text
    zero = LABEL_WIDTH + (plot / 2 if signed else 0)
    scale = (plot / 2 if signed else plot) / span
    bars = []
    for i, (label, value) in enumerate(ranked):
        length = abs(value) * scale
        x = zero - length if value < 0 else zero
        bars.append(Bar(label, readable.number(value), x, i * ROW + 4, length, ROW - 4, value < 0))
    note = f"the {len(ranked)} largest of {len(items)}" if len(items) > len(ranked) else ""
    return Chart(title, WIDTH, len(ranked) * ROW + 8, tuple(bars), zero, note=note)


def contribution_chart(explanation: Mapping[str, Any], limit: int = MAX_BARS) -> Chart:
    """A prediction's explanation (docs/API.md, "Explanations") as signed bars, largest magnitude
    first: what moved this record's output away from the base, and which way. The title holds the
    base and the output the bars add up to, so the chart reads on its own."""
    contributions = explanation["contributions"]
    base = explanation["base"]
    output = base + sum(contributions.values())
    chart = bar_chart("", list(contributions.items()), limit)
    title = f"contributions to the {explanation['output']}: base {base:.4g} + contributions = {output:.4g}"
    return replace(chart, title=title)


def histogram(
    title: str, values: Sequence[float], bins: int = 10, low: float | None = None, high: float | None = None
) -> Chart:
    """Counts of values in equal bins from low to high (default: their range), as columns."""
    finite = [v for v in values if math.isfinite(v)]
    low = min(finite, default=0.0) if low is None else low
    high = max(finite, default=1.0) if high is None else high
    if high <= low:
        high = low + 1.0
    counts = [0] * bins
    for v in finite:
        counts[min(bins - 1, max(0, int((v - low) / (high - low) * bins)))] += 1
    height, left, step = 160, 40, (WIDTH - 60) / bins
    top = max(counts, default=0) or 1
    edges = [low + i * (high - low) / bins for i in range(bins + 1)]
    bars = []
    for i, count in enumerate(counts):
        tall = count / top * height
        label = f"{edges[i]:.3g} to {edges[i + 1]:.3g}"
        bars.append(Bar(label, str(count), left + i * step, height - tall + 10, step - 2, tall))
    axis = tuple((left + i * step, f"{edges[i]:.3g}") for i in range(0, bins + 1, max(1, bins // 5)))
    return Chart(title, WIDTH, height + 40, tuple(bars), left, axis, note=f"{len(finite)} values")


def compared(title: str, labels: Sequence[str], training: Sequence[int], live: Sequence[int], note: str = "") -> Chart:
    """Two distributions over the same bins as paired columns of their shares (percent): a
    feature's training profile beside its live window (docs/API.md, "Quality and drift")."""
    height, left = 160, 40
    step = (WIDTH - 60) / max(len(labels), 1)
    shares = [[c / (sum(counts) or 1) * 100 for c in counts] for counts in (training, live)]
    top = max((v for series in shares for v in series), default=0.0) or 1.0
    bars = []
    for i, label in enumerate(labels):
        for j, (series, share) in enumerate(zip(("training", "live"), (shares[0][i], shares[1][i]), strict=True)):
            tall = share / top * height
            x, wide = left + i * step + j * (step - 2) / 2, (step - 2) / 2 - 1
            bars.append(Bar(f"{label} ({series})", f"{share:.0f}%", x, height - tall + 10, wide, tall, series=series))
    skip = max(1, len(labels) // 6)
    axis = tuple((left + (i + 0.5) * step, labels[i][:14]) for i in range(0, len(labels), skip))
    return Chart(title, WIDTH, height + 40, tuple(bars), left, axis, note=note)
