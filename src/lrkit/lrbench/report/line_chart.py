"""Inline SVG line charts for the report: round ticks, curves that never hide one another, a legend that fits.

- Ticks are round numbers (1, 2 or 5 times a power of ten), never the data's own extremes.
- Series that coincide are drawn once and named together in one legend entry ("same curve"), so a
  curve hidden under another is never listed as if it could be seen. "Coincide" is ``lrkit plot``'s
  rule (:func:`lrkit.plotting.coincident_groups`: at the same updates, nowhere further apart than
  :data:`~lrkit.plotting.COINCIDE_RTOL` of the largest value drawn, pointwise on a log axis).
- Every drawn curve has its own colour from a qualitative palette (:data:`COLORS`, Tableau 10), and a dash
  pattern once there are more curves than colours; a caller that draws the same series on several charts
  passes ``keys`` so that a series keeps its colour on all of them (see :func:`line_chart`).
- A linear axis can be fitted to the values of interest (:func:`fit_range`) instead of starting at 0; the
  lines are cut at the plot's edges, and the legend names a curve that leaves the range.
- The legend sits below the plot, one entry per line, wrapped to the chart's width
  (:func:`lrkit.text.wrap`), each with a swatch of its curve's colour and dash.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from lrkit.plotting import coincident_groups
from lrkit.text import escape, wrap

#: Tableau 10 (a qualitative palette: no two of its colours read as one on a thin line), its yellow and grey,
#: the faintest on white, last
COLORS = ("#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#b07aa1", "#ff9da7", "#9c755f", "#edc948",
          "#bab0ac")
DASHES = ("", "7 3", "2 2", "8 3 2 3")  # the 11th to 20th curve dashed, and so on
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


@dataclass(frozen=True)
class _Drawn:
    """One curve to draw: the labels of the series it stands for (more than one when they coincide), its
    points, and its style: an index into :data:`COLORS` and then :data:`DASHES`."""

    names: list[str]
    xs: list[float]
    ys: list[float]
    style: int

    @property
    def color(self) -> str:
        return COLORS[self.style % len(COLORS)]

    @property
    def dash(self) -> str:
        return DASHES[(self.style // len(COLORS)) % len(DASHES)]


def _merge(series: list[tuple[str, list[float], list[float]]], log_y: bool) -> list[tuple[list[str], list[float], list[float], int]]:
    """The series to draw: those that coincide (at the same updates) as one, with every label it stands for
    and the index of the first of them."""
    at: dict[tuple[float, ...], list[int]] = {}  # the series drawn at the same updates: only those can coincide
    for i, (_, xs, _) in enumerate(series):
        at.setdefault(tuple(xs), []).append(i)
    leader = list(range(len(series)))
    for members in at.values():
        curves = [np.asarray(series[i][2], dtype=float) for i in members]
        for i, j in zip(members, coincident_groups(curves, log_y)):
            leader[i] = members[j]
    merged: dict[int, tuple[list[str], list[float], list[float], int]] = {}
    for i, (label, xs, ys) in enumerate(series):
        merged.setdefault(leader[i], ([], list(xs), list(ys), i))[0].append(label)
    return list(merged.values())


def _styled(merged: list[tuple[list[str], list[float], list[float], int]], keys: list[int] | None) -> list[_Drawn]:
    """Each drawn curve's style: its series' key where the keys give the drawn curves distinct colours (or as
    many as the palette has), else its place in the drawing order, so no two curves share a colour and dash."""
    own = [keys[first] for *_, first in merged] if keys is not None else None
    if own is None or len({k % len(COLORS) for k in own}) < min(len(own), len(COLORS)) or len(set(own)) < len(own):
        own = list(range(len(merged)))
    return [_Drawn(names, xs, ys, style) for (names, xs, ys, _), style in zip(merged, own)]


def fit_range(series: list[tuple[str, list[float], list[float]]], include: tuple[float, ...] = ()) -> tuple[float, float]:
    """The values of a linear axis worth showing: ``(low, high)`` for :func:`line_chart`'s ``y_range``.

    ``high`` is the largest value drawn. ``low`` is the lowest point after the first (the first is the run's
    start, often an accuracy near chance) of the curves of interest: those whose best value is at or above
    Tukey's lower fence of the curves' best values, ``Q1 - 1.5 (Q3 - Q1)`` (one vote per curve: a failing run
    is evaluated more often than one stopped at the target). Both are stretched to cover ``include`` (e.g. a
    target line). A curve far below the others thus runs off the bottom instead of squeezing them into the
    top of the chart.

    Example:
        >>> fit_range([("a", [0, 50, 100], [0.1, 0.77, 0.79]), ("b", [0, 50, 100], [0.1, 0.78, 0.8])], (0.8,))
        (0.77, 0.8)
    """
    curves = [[y for y in ys if math.isfinite(y)] for _, _, ys in series]
    curves = [ys for ys in curves if ys]
    must = [v for v in include if math.isfinite(v)]
    if not curves:
        return (min(must), max(must)) if must else (0.0, 1.0)
    q1, q3 = np.percentile([max(ys) for ys in curves], [25, 75])
    later = [y for ys in curves if max(ys) >= q1 - 1.5 * (q3 - q1) for y in (ys[1:] or ys)]
    return min(later + must), max([y for ys in curves for y in ys] + must)


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


def _curves(f: _Frame, drawn: list[_Drawn], log_y: bool) -> list[str]:
    """One polyline per drawn curve, in its colour and dash, cut at the plot area's edges (a nested ``<svg>``
    with the page's own coordinates, which hides what lies outside it; 2 px of slack keep a line on an edge whole)."""
    left, top, w, h = PAD_L - 2, PAD_T - 2, f.width - PAD_L - PAD_R + 4, f.height - PAD_T - PAD_B + 4
    out = [f'<svg x="{left}" y="{top}" width="{w}" height="{h}" viewBox="{left} {top} {w} {h}" overflow="hidden">']
    for c in drawn:
        pts = " ".join(f"{f.fx(x):.1f},{f.fy(_plotted(y, log_y)):.1f}" for x, y in zip(c.xs, c.ys) if _shown(y, log_y))
        style = f' stroke-dasharray="{c.dash}"' if c.dash else ""
        out.append(f'<polyline fill="none" stroke="{c.color}" stroke-width="2"{style} points="{pts}"/>')
    return out + ["</svg>"]


def _off_the_axis(c: _Drawn, f: _Frame, log_y: bool) -> str:
    """What the legend says of a curve that leaves the y range: all of it, or its points after the first (the
    first is the run's start, far below by nature), below or above it; "" when it stays inside."""
    ys = [y for y in c.ys if _shown(y, log_y)]
    low, high = [y for y in ys if _plotted(y, log_y) < f.y0], [y for y in ys if _plotted(y, log_y) > f.y1]
    if ys and len(low) == len(ys):
        return f" [below the axis: at most {max(ys):.4g}]"
    if ys and len(high) == len(ys):
        return f" [above the axis: at least {min(ys):.4g}]"
    if any(_plotted(y, log_y) < f.y0 for y in ys[1:]):
        return f" [partly below the axis: lowest {min(ys[1:]):.4g}]"
    return f" [partly above the axis: highest {max(ys):.4g}]" if high else ""


def _legend_lines(drawn: list[_Drawn], f: _Frame, log_y: bool) -> list[tuple[_Drawn, list[str]]]:
    """Each drawn curve and its legend entry, wrapped to the chart's width."""
    chars = max(20, (f.width - 40) // 6)
    return [(c, wrap(" = ".join(c.names) + (" (same curve)" if len(c.names) > 1 else "") + _off_the_axis(c, f, log_y),
                     chars)) for c in drawn]


def _legend(legend: list[tuple[_Drawn, list[str]]], height: int) -> list[str]:
    """The legend below the plot: a swatch of the curve's colour and dash, and the entry's lines."""
    out = []
    ly = height + 4
    for c, lines in legend:
        dash = f' stroke-dasharray="{c.dash}"' if c.dash else ""
        out.append(f'<line x1="{PAD_L}" y1="{ly + 6}" x2="{PAD_L + 16}" y2="{ly + 6}" stroke="{c.color}" '
                   f'stroke-width="3"{dash} class="swatch"/>')
        for j, line in enumerate(lines):
            out.append(f'<text x="{PAD_L + 22}" y="{ly + 10 + j * LINE}" class="legend">{escape(line)}</text>')
        ly += LINE * len(lines)
    return out


def line_chart(series: list[tuple[str, list[float], list[float]]], *, title: str, xlabel: str, ylabel: str,
               hline: float | None = None, hline_label: str = "", width: int = 720, height: int = 300,
               log_y: bool = False, from_zero: bool = True, y_range: tuple[float, float] | None = None,
               keys: list[int] | None = None) -> str:
    """An SVG line chart of ``(label, xs, ys)`` series (see the module docstring).

    ``log_y``: a logarithmic y axis with a tick at every power of ten (values <= 0 are not drawn): LRs of
    optimizers on different scales (SGD's 0.1, Adam's 1e-3) stay readable.
    ``from_zero=False`` starts a linear axis at a round value below the data instead of at 0.
    ``y_range=(low, high)`` (e.g. from :func:`fit_range`): a linear axis from a round value at or below
    ``low`` to one at or above ``high``; what lies outside is cut, and its curve's legend entry says so.
    ``keys``: one int per series, its style (colour, then dash) wherever it is drawn, so a series keeps its
    colour across charts; ignored where two drawn curves would share a colour the palette could tell apart.
    """
    xs = [x for _, sx, _ in series for x in sx]
    ys = [_plotted(y, log_y) for _, _, sy in series for y in sy if _shown(y, log_y)]
    ys += [_plotted(hline, log_y)] if hline is not None and _shown(hline, log_y) else []
    if not xs or not ys:
        return f'<p class="empty">{escape(title)}: no data yet.</p>'
    xt = nice_ticks(0.0, max(xs) or 1.0)
    yt = _y_ticks(list(_widened(y_range)) if y_range and not log_y else ys, log_y, from_zero and y_range is None)
    frame = _Frame(width, height, xt[0], xt[-1], yt[0], yt[-1])
    drawn = _styled(_merge(series, log_y), keys)
    legend = _legend_lines(drawn, frame, log_y)
    legend_h = sum(len(lines) for _, lines in legend) * LINE + 8
    out = [(f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height + legend_h}" role="img" '
            f'aria-label="{escape(title)}">'),
           f'<text x="{width / 2}" y="14" text-anchor="middle" class="title">{escape(title)}</text>']
    out += _grid(frame, xt, yt, log_y, xlabel, ylabel)
    if hline is not None and _shown(hline, log_y) and frame.y0 <= _plotted(hline, log_y) <= frame.y1:
        y = frame.fy(_plotted(hline, log_y))
        out.append(f'<line x1="{PAD_L}" y1="{y:.1f}" x2="{width - PAD_R}" y2="{y:.1f}" class="target"/>'
                   f'<text x="{width - PAD_R - 2}" y="{y - 4:.1f}" text-anchor="end">{escape(hline_label)}</text>')
    out += _curves(frame, drawn, log_y)
    out += _legend(legend, height)
    out.append("</svg>")
    return "\n".join(out)


def _widened(y_range: tuple[float, float]) -> tuple[float, float]:
    """``y_range``, at least 1% of its magnitude wide (a single value still gets an axis around it)."""
    low, high = sorted(y_range)
    pad = max(0.0, 0.01 * max(abs(low), abs(high), 1e-12) - (high - low)) / 2
    return low - pad, high + pad


__all__ = ["COLORS", "fit_range", "line_chart", "nice_ticks"]
