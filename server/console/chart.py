"""The overview's hourly chart as plain SVG geometry: stacked bars, one colour per event type."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

# Colour-blind-safe hues (Okabe-Ito), dark enough for contrast on white.
PALETTE = ["#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#6b6b00",
           "#882255"]
WIDTH, HEIGHT, LEFT, BOTTOM, TOP = 720, 220, 40, 28, 10


@dataclass(frozen=True, slots=True)
class Bar:
    x: float
    y: float
    width: float
    height: float
    colour: str
    label: str


@dataclass(frozen=True, slots=True)
class Chart:
    bars: list[Bar]
    ticks: list[tuple[float, str]]
    grid: list[tuple[float, int]]
    legend: list[tuple[str, str]]
    peak: int
    width: int = WIDTH
    height: int = HEIGHT
    left: int = LEFT
    bottom: int = BOTTOM


def _nice_max(value: int) -> int:
    for scale in (1, 10, 100, 1000, 10_000, 100_000, 1_000_000, 10_000_000):
        for step in (1, 2, 5):
            if step * scale >= value:
                return step * scale
    return value


def hourly_chart(*, since: datetime, series: list[tuple[str, list[int]]]) -> Chart:
    """Stacked bars per hour; ``series`` is (event type, counts per hour oldest first)."""
    hours = max((len(c) for _, c in series), default=24)
    totals = [sum(c[i] for _, c in series if i < len(c)) for i in range(hours)]
    peak = _nice_max(max(totals, default=0) or 1)
    plot_w, plot_h = WIDTH - LEFT - 8, HEIGHT - BOTTOM - TOP
    slot = plot_w / hours
    colours = {key: PALETTE[i % len(PALETTE)] for i, (key, _) in enumerate(series)}
    bars: list[Bar] = []
    for i in range(hours):
        base = 0
        start = since + timedelta(hours=i)
        for key, counts in series:
            n = counts[i] if i < len(counts) else 0
            if not n:
                continue
            h = plot_h * n / peak
            y = TOP + plot_h * (1 - (base + n) / peak)
            bars.append(Bar(x=LEFT + i * slot + 1, y=y, width=max(slot - 2, 1), height=h,
                            colour=colours[key],
                            label=f"{key}: {n} at {start:%H}:00–{start:%H}:59 UTC"))
            base += n
    ticks = [(LEFT + i * slot + slot / 2, f"{since + timedelta(hours=i):%H}")
             for i in range(0, hours, 3)]
    grid = [(TOP + plot_h * (1 - f), int(peak * f)) for f in (0.0, 0.5, 1.0)
            if f in (0.0, 1.0) or peak % 2 == 0]
    return Chart(bars=bars, ticks=ticks, grid=grid,
                 legend=[(key, colours[key]) for key, _ in series], peak=peak)
