"""Inline SVG line charts for the report: round ticks, curves that never hide one another, a legend that fits.

- Ticks are round numbers (1, 2 or 5 times a power of ten), never the data's own extremes.
- Series that coincide are drawn once and named together in one legend entry ("same curve"), so a
  curve hidden under another is never listed as if it could be seen. "Coincide" is ``lrkit plot``'s
  rule (:func:`lrkit.plotting.coincident_groups`: at the same updates, nowhere further apart than
  :data:`~lrkit.plotting.COINCIDE_RTOL` of the largest value drawn, pointwise on a log axis).
- The legend sits below the plot, one entry per line, wrapped to the chart's width
  (:func:`lrkit.text.wrap`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from lrkit.plotting import coincident_groups
from lrkit.text import escape, wrap

COLORS = ("#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf", "#7f7f7f")
DASHES = ("", "6 3", "2 2", "8 3 2 3")
LINE = 15  # px per legend line


def nice_ticks(lo: float, hi: float, n: int = 5) -> list[float]:
    """About ``n`` round ticks covering ``[lo, hi]``: multiples of 1, 2 or 5 × 10^k.

    Example:
        >>> nice_ticks(0, 499)
        [0, 100, 200, 300, 400, 500]
        >>> nice_ticks(0, 0.192)
        [0.0, 0.05, 0.1, 0.15, 0.2]
    """
    if not (math.isfinite(lo) and math.isfinite(hi)) or hi <= lo:
        return [lo]
    raw = (hi - lo) / max(1, n)
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw)
    first = math.floor(lo / step + 1e-9) * step
    ticks, k = [], 0
    while True:
        value = first + k * step
        ticks.append(round(value, 12))
        if value >= hi - 1e-9 * step:
            return ticks
        k += 1


def _tick_label(value: float, step: float) -> str:
    if step >= 1 and float(value).is_integer():
        return f"{int(value)}"
    decimals = max(0, -math.floor(math.log10(step)) + (1 if round(step / 10 ** math.floor(math.log10(step)), 6) == 2.5 else 0))
    return f"{value:.{decimals}f}" if abs(value) >= 1e-4 or value == 0 else f"{value:.1e}"


def _merge(series: list[tuple[str, list[float], list[float]]],
           log_y: bool) -> list[tuple[list[str], list[float], list[float]]]:
    """The series to draw: those that coincide (at the same updates) as one, with every label it stands for."""
    at: dict[tuple[float, ...], list[int]] = {}  # the series drawn at the same updates: only those can coincide
    for i, (_, xs, _) in enumerate(series):
        at.setdefault(tuple(xs), []).append(i)
    leader = list(range(len(series)))
    for members in at.values():
        curves = [np.asarray(series[i][2], dtype=float) for i in members]
        for i, j in zip(members, coincident_groups(curves, log_y)):
            leader[i] = members[j]
    merged: dict[int, tuple[list[str], list[float], list[float]]] = {}
    for i, (label, xs, ys) in enumerate(series):
        merged.setdefault(leader[i], ([], list(xs), list(ys)))[0].append(label)
    return list(merged.values())


PAD_L, PAD_R, PAD_T, PAD_B = 64, 16, 22, 40  # px around the plot area


def _plotted(v: float, log_y: bool) -> float:
    return math.log10(v) if log_y else v


def _shown(v: float, log_y: bool) -> bool:
    return math.isfinite(v) and (v > 0 or not log_y)


def _y_ticks(ys: list[float], log_y: bool, from_zero: bool) -> list[float]:
    """The y ticks of the plotted values ``ys``: every power of ten on a log axis, else round ones."""
    if log_y:
        return [float(k) for k in range(math.floor(min(ys)), max(math.ceil(max(ys)), math.floor(min(ys)) + 1) + 1)]
    low = min(ys) if not from_zero else min(0.0, min(ys))
    yt = nice_ticks(low, max(ys) or 1.0)
    if not from_zero:  # start at the tick at or below the data, not at 0
        step = (yt[1] - yt[0]) if len(yt) > 1 else 1.0
        yt = nice_ticks(math.floor(min(ys) / step) * step, max(ys))
    return yt


@dataclass(frozen=True)
class _Frame:
    """The plot area: ``width`` x ``height`` px showing ``[x0, x1] x [y0, y1]`` (y plotted, so log10 on a log axis)."""

    width: int
    height: int
    x0: float
    x1: float
    y0: float
    y1: float

    def fx(self, v: float) -> float:
        return PAD_L + (v - self.x0) / ((self.x1 - self.x0) or 1) * (self.width - PAD_L - PAD_R)

    def fy(self, v: float) -> float:
        return self.height - PAD_B - (v - self.y0) / ((self.y1 - self.y0) or 1) * (self.height - PAD_T - PAD_B)


def _grid(f: _Frame, xt: list[float], yt: list[float], log_y: bool, xlabel: str, ylabel: str) -> list[str]:
    """The grid lines with their tick labels, the axes and the axis labels."""
    width, height, fx, fy = f.width, f.height, f.fx, f.fy
    out = []
    xstep = xt[1] - xt[0] if len(xt) > 1 else 1.0
    ystep = yt[1] - yt[0] if len(yt) > 1 else 1.0
    for t in xt:
        out.append(f'<line x1="{fx(t):.1f}" y1="{fy(f.y0):.1f}" x2="{fx(t):.1f}" y2="{fy(f.y1):.1f}" class="grid"/>'
                   f'<text x="{fx(t):.1f}" y="{fy(f.y0) + 14:.1f}" text-anchor="middle">{_tick_label(t, xstep)}</text>')
    for t in yt:
        label = f"{10 ** t:g}" if log_y else _tick_label(t, ystep)
        out.append(f'<line x1="{PAD_L}" y1="{fy(t):.1f}" x2="{width - PAD_R}" y2="{fy(t):.1f}" class="grid"/>'
                   f'<text x="{PAD_L - 4}" y="{fy(t) + 4:.1f}" text-anchor="end">{label}</text>')
    out.append(f'<line x1="{PAD_L}" y1="{fy(f.y0):.1f}" x2="{width - PAD_R}" y2="{fy(f.y0):.1f}" class="axis"/>'
               f'<line x1="{PAD_L}" y1="{fy(f.y0):.1f}" x2="{PAD_L}" y2="{fy(f.y1):.1f}" class="axis"/>')
    out.append(f'<text x="{(PAD_L + width - PAD_R) / 2}" y="{height - 6}" text-anchor="middle">{escape(xlabel)}</text>')
    out.append(f'<text x="12" y="{height / 2}" transform="rotate(-90 12 {height / 2})" text-anchor="middle">'
               f'{escape(ylabel)}</text>')
    return out


def _curves(f: _Frame, merged: list[tuple[list[str], list[float], list[float]]], log_y: bool) -> list[str]:
    """One polyline per merged series (its colour and dash by its index, as in the legend)."""
    out = []
    for i, (_, sx, sy) in enumerate(merged):
        color, dash = COLORS[i % len(COLORS)], DASHES[(i // len(COLORS)) % len(DASHES)]
        pts = " ".join(f"{f.fx(x):.1f},{f.fy(_plotted(y, log_y)):.1f}" for x, y in zip(sx, sy) if _shown(y, log_y))
        style = f' stroke-dasharray="{dash}"' if dash else ""
        out.append(f'<polyline fill="none" stroke="{color}" stroke-width="1.6"{style} points="{pts}"/>')
    return out


def _legend_lines(merged: list[tuple[list[str], list[float], list[float]]], width: int) -> list[tuple[int, list[str]]]:
    """Each merged series' index and its legend entry, wrapped to the chart's width."""
    chars = max(20, (width - 40) // 6)
    return [(i, wrap((" = ".join(names) + (" (same curve)" if len(names) > 1 else "")), chars))
            for i, (names, _, _) in enumerate(merged)]


def _legend(legend: list[tuple[int, list[str]]], height: int) -> list[str]:
    """The legend below the plot: a colour swatch and the entry's lines."""
    out = []
    ly = height + 4
    for i, lines in legend:
        color = COLORS[i % len(COLORS)]
        out.append(f'<rect x="{PAD_L}" y="{ly + 4}" width="14" height="4" fill="{color}"/>')
        for j, line in enumerate(lines):
            out.append(f'<text x="{PAD_L + 20}" y="{ly + 10 + j * LINE}" class="legend">{escape(line)}</text>')
        ly += LINE * len(lines)
    return out


def line_chart(series: list[tuple[str, list[float], list[float]]], *, title: str, xlabel: str, ylabel: str,
               hline: float | None = None, hline_label: str = "", width: int = 720, height: int = 300,
               log_y: bool = False, from_zero: bool = True) -> str:
    """An SVG line chart of ``(label, xs, ys)`` series (see the module docstring).

    ``log_y``: a logarithmic y axis with a tick at every power of ten (values <= 0 are not drawn): LRs of
    optimizers on different scales (SGD's 0.1, Adam's 1e-3, Prodigy's multiplier 1) stay readable.
    ``from_zero=False`` starts a linear axis at a round value below the data instead of at 0.
    """
    xs = [x for _, sx, _ in series for x in sx]
    ys = [_plotted(y, log_y) for _, _, sy in series for y in sy if _shown(y, log_y)]
    ys += [_plotted(hline, log_y)] if hline is not None and _shown(hline, log_y) else []
    if not xs or not ys:
        return f'<p class="empty">{escape(title)}: no data yet.</p>'
    xt = nice_ticks(0.0, max(xs) or 1.0)
    yt = _y_ticks(ys, log_y, from_zero)
    frame = _Frame(width, height, xt[0], xt[-1], yt[0], yt[-1])
    merged = _merge(series, log_y)
    legend = _legend_lines(merged, width)
    legend_h = sum(len(lines) for _, lines in legend) * LINE + 8
    out = [(f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height + legend_h}" role="img" '
            f'aria-label="{escape(title)}">'),
           f'<text x="{width / 2}" y="14" text-anchor="middle" class="title">{escape(title)}</text>']
    out += _grid(frame, xt, yt, log_y, xlabel, ylabel)
    if hline is not None and _shown(hline, log_y):
        y = frame.fy(_plotted(hline, log_y))
        out.append(f'<line x1="{PAD_L}" y1="{y:.1f}" x2="{width - PAD_R}" y2="{y:.1f}" class="target"/>'
                   f'<text x="{width - PAD_R - 2}" y="{y - 4:.1f}" text-anchor="end">{escape(hline_label)}</text>')
    out += _curves(frame, merged, log_y)
    out += _legend(legend, height)
    out.append("</svg>")
    return "\n".join(out)


__all__ = ["line_chart", "nice_ticks"]
