"""One self-contained HTML page for a study (``lrkit report -o report.html``).

The page holds: the study's set-up and recommendation, the LR curves ``lr(t)`` of the top policies
overlaid, test accuracy against updates with the target as a dashed line, and the ranked table. Charts
are inline SVG drawn here (no script, no external file, no network), so the page opens anywhere and
can be archived. Every string that comes from the user or the database (task, study name, specs,
reasons) passes through ``html.escape``.
"""

from __future__ import annotations

import html
import math
from typing import Any

import numpy as np

from lrkit.lrbench import results as res

COLORS = ("#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf")
W, H, PAD = 640, 300, 48


def _e(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _scale(lo: float, hi: float, a: float, b: float):  # noqa: ANN202
    span = (hi - lo) or 1.0
    return lambda v: a + (v - lo) / span * (b - a)


def _ticks(lo: float, hi: float, n: int = 5) -> list[float]:
    return list(np.linspace(lo, hi, n))


def svg_chart(series: list[tuple[str, list[float], list[float]]], *, title: str, xlabel: str, ylabel: str,
              hline: float | None = None, hline_label: str = "") -> str:
    """An SVG line chart of ``(label, xs, ys)`` series with axes, ticks, a legend and an optional dashed line."""
    xs = [x for _, sx, _ in series for x in sx]
    ys = [y for _, _, sy in series for y in sy if math.isfinite(y)] + ([hline] if hline is not None else [])
    if not xs or not ys:
        return f'<p class="empty">{_e(title)}: no data yet.</p>'
    x0, x1 = 0.0, max(xs) or 1.0
    y0, y1 = min(0.0, min(ys)), max(ys) * 1.05 or 1.0
    fx, fy = _scale(x0, x1, PAD, W - 12), _scale(y0, y1, H - PAD + 12, 18)
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H + 18 * len(series)}" '
           f'role="img" aria-label="{_e(title)}">',
           f'<text x="{W / 2}" y="12" text-anchor="middle" class="title">{_e(title)}</text>',
           f'<line x1="{PAD}" y1="{fy(y0)}" x2="{W - 12}" y2="{fy(y0)}" class="axis"/>',
           f'<line x1="{PAD}" y1="{fy(y0)}" x2="{PAD}" y2="18" class="axis"/>']
    for t in _ticks(x0, x1):
        out.append(f'<text x="{fx(t):.1f}" y="{fy(y0) + 14:.1f}" text-anchor="middle">{t:.0f}</text>')
    for t in _ticks(y0, y1):
        out.append(f'<text x="{PAD - 4}" y="{fy(t) + 4:.1f}" text-anchor="end">{t:.3g}</text>')
    out.append(f'<text x="{W / 2}" y="{H - 8}" text-anchor="middle">{_e(xlabel)}</text>')
    out.append(f'<text x="12" y="{H / 2}" transform="rotate(-90 12 {H / 2})" text-anchor="middle">{_e(ylabel)}</text>')
    if hline is not None:
        out.append(f'<line x1="{PAD}" y1="{fy(hline):.1f}" x2="{W - 12}" y2="{fy(hline):.1f}" class="target"/>'
                   f'<text x="{W - 14}" y="{fy(hline) - 4:.1f}" text-anchor="end">{_e(hline_label)}</text>')
    for i, (label, sx, sy) in enumerate(series):
        color = COLORS[i % len(COLORS)]
        pts = " ".join(f"{fx(x):.1f},{fy(y):.1f}" for x, y in zip(sx, sy) if math.isfinite(y))
        out.append(f'<polyline fill="none" stroke="{color}" stroke-width="1.6" points="{pts}"/>')
        ly = H + 4 + 18 * i
        out.append(f'<rect x="{PAD}" y="{ly}" width="12" height="4" fill="{color}"/>'
                   f'<text x="{PAD + 18}" y="{ly + 6}" class="legend">{_e(label)}</text>')
    out.append("</svg>")
    return "\n".join(out)


def _lr_series(rec: res.TrialRecord, budget: int, points: int = 400) -> tuple[list[float], list[float]]:
    from lrkit.spec import parse

    t = np.linspace(0, budget - 1, min(points, budget))
    try:
        return list(t), list(parse(rec.spec).values(t))
    except Exception:  # a spec from a newer lrkit: draw nothing rather than fail the whole page
        return [], []


def _label(rec: res.TrialRecord, width: int = 80) -> str:
    spec = rec.spec if len(rec.spec) <= width else rec.spec[: width - 3] + "..."
    return f"#{rec.rank} ({rec.role}) {spec}"


def _table(ranked: list[res.TrialRecord]) -> str:
    cols = ("rank", "number", "role", "family", "status", "steps_to_target", "best_acc", "final_acc", "steps",
            "seconds", "seeds", "spread", "spec")
    head = "".join(f"<th>{_e(c)}</th>" for c in cols)
    rows = []
    for r in ranked:
        row = r.row()
        cells = "".join(f"<td>{_e(res._fmt(row[c]))}</td>" for c in cols[:-1])
        cls = ' class="default"' if r.role == "default" else ""
        rows.append(f"<tr{cls}>{cells}<td><code>{_e(r.spec)}</code></td></tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"


def render(study: Any, *, top: int = 5) -> str:
    """The report page for ``study`` as an HTML string."""
    from lrkit.lrbench.recommend import summarize
    from lrkit.lrbench.storage import ATTR_CONFIG, StudyConfig

    config = StudyConfig.from_dict(study.user_attrs.get(ATTR_CONFIG, {}))
    rec = summarize(study, config)
    shown = [r for r in rec.ranked if r.role == "candidate"][:top]
    if rec.default is not None:
        shown.append(rec.default)
    lr_chart = svg_chart([(_label(r), *_lr_series(r, config.budget)) for r in shown],
                         title=f"LR policies: top {len(shown) - (rec.default is not None)} and the default",
                         xlabel="update t", ylabel="learning rate")
    acc_series = [(_label(r), [p["step"] for p in r.get("curve", [])],
                   [p["test_acc"] if p["test_acc"] is not None else math.nan for p in r.get("curve", [])])
                  for r in shown]
    acc_chart = svg_chart(acc_series, title="Test accuracy against updates", xlabel="update t",
                          ylabel="test accuracy", hline=config.target, hline_label=f"target {config.target:g}")
    best = rec.best
    summary = (f"<p>Recommended: <code>{_e(best.spec)}</code> ({_e(best.family)}): "
               f"{_e(best.get('steps_to_target', '-'))} updates to target, best accuracy "
               f"{best.get('best_acc', 0):.4f}. Speed-up: {_e(rec.speedup_text)}.</p>"
               if best else "<p>No candidate has finished yet.</p>")
    counts: dict[str, int] = {}
    for r in res.records(study):
        counts[r.state] = counts.get(r.state, 0) + 1
    setup = (f"task <b>{_e(config.task)}</b>, target {config.target:g}, budget {config.budget} updates, "
             f"optimizer {_e(config.optimizer)} {_e(config.optimizer_kwargs or '')}, seed {config.seed}, "
             f"LR range [{config.lr_range[0]:.3g}, {config.lr_range[1]:.3g}] by {_e(config.lr_range_method)}, "
             f"pruner {_e(config.pruner)}; trials: {_e(', '.join(f'{k} {v}' for k, v in sorted(counts.items())))}")
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<title>lrkit report: {_e(study.study_name)}</title>
<style>
body {{ font-family: sans-serif; margin: 2em; color: #222; }}
table {{ border-collapse: collapse; font-size: 13px; }}
td, th {{ border: 1px solid #ccc; padding: 2px 6px; text-align: left; }}
tr.default {{ background: #f3f3f3; }}
svg text {{ font-size: 11px; }} svg .title {{ font-size: 13px; font-weight: bold; }}
svg .axis {{ stroke: #444; }} svg .target {{ stroke: #000; stroke-dasharray: 6 4; }}
code {{ font-size: 12px; }}
</style></head><body>
<h1>lrkit recommendation: {_e(study.study_name)}</h1>
<p id="setup">{setup}</p>
<div id="summary">{summary}</div>
<h2>LR curves</h2><div id="lr-chart">{lr_chart}</div>
<h2>Test accuracy</h2><div id="acc-chart">{acc_chart}</div>
<h2>Ranked trials</h2><div id="ranking">{_table(rec.ranked)}</div>
<p>Re-run the recommendation: <code>lrkit verify --task {_e(config.task)} --target {config.target:g}
--budget {config.budget} --policy {_e(repr(best.spec) if best else "SPEC")}</code></p>
</body></html>
"""


def write_report(study: Any, path: str, *, top: int = 5) -> str:
    """Write :func:`render`'s page to ``path`` (UTF-8) and return the path."""
    from pathlib import Path

    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text(render(study, top=top), encoding="utf-8")
    return path
