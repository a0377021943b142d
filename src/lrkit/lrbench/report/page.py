"""One self-contained HTML page for a study (``lrkit report -o report.html``).

The page holds: the study's set-up; the recommendation beside the task's default and every baseline
(the numbers it is judged on, and the test numbers it reports); the LR curves of the top methods (an
LR-free optimizer's policy value, a multiplier of the step size it estimates, on a chart of its own);
their accuracy against updates with the target as a dashed line, on an axis fitted to the curves (each
method keeps its colour on every chart); the family × optimizer heatmap (the
mutual impact of policies and optimizers); and the ranked table, with counts that match it. Charts are
inline SVG drawn here (no script, no external file, no network), so the page opens anywhere and can be
archived. Every string that comes from the user or the database passes through :func:`lrkit.text.escape`.
The recommendation is :meth:`~lrkit.lrbench.search.recommend.Recommendation.summary_lines`, the lines
``lrkit recommend`` prints, marked up here (specs and the re-run command as code), never reworded.
"""

from __future__ import annotations

import math
import re
from typing import Any

import numpy as np

from lrkit.errors import LRKitError
from lrkit.lrbench.report.formats import method_text, reached_text, spread_text
from lrkit.lrbench.report.line_chart import fit_range, line_chart
from lrkit.lrbench.study import ranking as res
from lrkit.text import escape, fmt

CHART_WIDTH = 720


def _lr_series(spec: str, budget: int, points: int = 400) -> tuple[list[float], list[float]]:
    """``spec``'s LR at up to ``points`` updates spread over ``0 .. budget-1`` (nothing for a spec this
    lrkit cannot read, e.g. one a newer lrkit stored: the page still renders)."""
    from lrkit.spec import parse

    t = np.unique(np.round(np.linspace(0, budget - 1, min(points, budget))))
    try:
        return list(t), list(parse(spec).values(t))
    except Exception:  # noqa: BLE001 (any failure to read or evaluate it: draw nothing rather than fail the page)
        return [], []


def _lr_free(optimizer: str) -> bool:
    """Whether the optimizer's ``lr`` multiplies a step size it estimates itself (Prodigy, D-Adaptation); by its
    class name when it cannot be loaded here (the page still renders)."""
    from lrkit.lrbench.tasks.optimizers import LR_FREE_CLASSES, is_lr_free

    try:
        return is_lr_free(optimizer)
    except (LRKitError, ImportError):
        return str(optimizer).rsplit(":", 1)[-1] in LR_FREE_CLASSES


#: under the multiplier chart: why it is not on the LR chart, and why the multiplier is drawn, not a step size
MULTIPLIER_NOTE = ("Prodigy and D-Adaptation estimate their own step size and multiply it by the policy's value, so "
                   "that value is not a learning rate: it is drawn here, on its own axis. A trial records the "
                   "policy's value at each evaluation, not the step size the optimizer estimated, so the step size "
                   "actually taken cannot be drawn.")
ACC_NOTE = ("The y axis covers the target and every evaluation after the first of each run whose best accuracy is "
            "not an outlier below the others' (Tukey's fence: 1.5 interquartile ranges below the lower quartile of "
            "the runs' best accuracies). The first evaluations (often near chance) and such runs go off the bottom "
            "edge; the legend names a run that does after its first evaluation.")


def _name(m: res.MethodRecord) -> str:
    from lrkit.lrbench.tasks.optimizers import describe

    who = {"candidate": "", "default": "default: ", "baseline": f"baseline {m.baseline}: "}.get(m.role, "")
    return f"#{m.rank} {who}{describe(m.optimizer, m.optimizer_kwargs)} · {m.spec}"


def _acc_series(m: res.MethodRecord, on: str) -> tuple[list[float], list[float]]:
    trial = m.first
    curve = trial.get("curve", [])
    key = "val_acc" if on == "val" else "test_acc"
    return ([p["step"] for p in curve],
            [p[key] if p.get(key) is not None else math.nan for p in curve])


def _recommendation(rec: Any) -> str:
    """:meth:`Recommendation.summary_lines`, a paragraph each, the recommendation in bold, the specs it names
    and the re-run command as code (the sentences are the recommendation's own, as ``lrkit recommend`` prints)."""
    specs = {m.spec for m in (rec.best, rec.best_candidate) if m is not None} | {rec.config.default_spec}
    named = re.compile("|".join(re.escape(escape(s)) for s in sorted(specs - {""}, key=len, reverse=True)) or "(?!)")
    out = []
    for i, line in enumerate(rec.summary_lines()):
        if rec.rerun and line.endswith(rec.rerun):
            text = f'{escape(line[:-len(rec.rerun)])}<code id="rerun">{escape(rec.rerun)}</code>'
        else:
            text = named.sub(lambda found: f"<code>{found.group(0)}</code>", escape(line))
        out.append(f"<p>{f'<b>{text}</b>' if i == 0 and rec.best is not None else text}</p>")
    return "".join(out)


def _summary_table(rec: Any) -> str:
    rows = [m for m in rec.ranked if m is rec.best or m is rec.best_candidate or m.role in ("default", "baseline")]
    head = ("method", "optimizer", "policy", "seeds reached", f"{rec.config.on} updates (worst)",
            "test updates (worst)", "test acc (worst)")
    body = []
    for m in rows:
        label = ("default" if m.role == "default" else f"baseline {m.baseline}" if m.role == "baseline"
                 else "the best candidate")
        label = f"recommended: {label}" if m is rec.best else label
        cells = (label, m.optimizer, m.spec, f"{m.seeds_reached}/{len(m.seeds)}", fmt(m.worst_steps),
                 fmt(m.test_worst_steps()), fmt(m.test_worst_acc()))
        cls = ' class="best"' if m is rec.best else ""
        body.append(f"<tr{cls}>" + "".join(f"<td>{escape(c)}</td>" for c in cells) + "</tr>")
    return (f"<table><thead><tr>{''.join(f'<th>{escape(h)}</th>' for h in head)}</tr></thead>"
            f"<tbody>{''.join(body)}</tbody></table>")


def _heatmap(ranked: list[res.MethodRecord], budget: int) -> str:
    table = res.by_optimizer(ranked)
    if not table:
        return '<p class="empty">no methods yet.</p>'
    opts = sorted({o for row in table.values() for o in row})
    head = "<th>family</th>" + "".join(f"<th>{escape(o)}</th>" for o in opts)
    body = []
    for fam, row in sorted(table.items()):
        cells = [f"<th>{escape(fam)}</th>"]
        for o in opts:
            cell = row.get(o)
            if cell is None:
                cells.append('<td class="none">·</td>')
                continue
            steps = cell["updates"]
            # greener for fewer updates to the target; grey when no method there reached it on all seeds
            shade = "#ddd" if steps is None else f"hsl(120, 55%, {35 + 55 * min(1.0, steps / budget):.0f}%)"
            text = f"{fmt(steps)} / {cell['acc']:.3f}"
            cells.append(f'<td style="background:{shade}" title="{cell["methods"]} methods">{escape(text)}</td>')
        body.append("<tr>" + "".join(cells) + "</tr>")
    return (f'<table class="heat"><thead><tr>{head}</tr></thead><tbody>{"".join(body)}</tbody></table>'
            "<p class=\"note\">Each cell: the fewest worst-seed updates to the target among the methods of that "
            "family and optimizer, then their best worst-seed accuracy; - where none reached the target on all "
            "its seeds; · where none ran.</p>")


def _ranking(ranked: list[res.MethodRecord], on: str) -> str:
    head = ("rank", "method", "family", "reached", f"{on} updates", "spread", f"{on} acc", "test updates",
            "test acc", "trials", "spec")
    rows = []
    for m in ranked:
        row = m.row()
        cells = (fmt(row["rank"]), method_text(row), row["family"], reached_text(row), fmt(row["updates"]),
                 spread_text(row), fmt(row["acc"]), fmt(row["test_updates"]), fmt(row["test_acc"]),
                 ", ".join(map(str, row["trials"])))
        cls = f' class="{m.role}"'
        rows.append(f"<tr{cls}>" + "".join(f"<td>{escape(c)}</td>" for c in cells)
                    + f"<td><code>{escape(m.spec)}</code></td></tr>")
    return (f"<table><thead><tr>{''.join(f'<th>{escape(h)}</th>' for h in head)}</tr></thead>"
            f"<tbody>{''.join(rows)}</tbody></table>")


def _counts(recs: list[res.TrialRecord], ranked: list[res.MethodRecord]) -> str:
    states: dict[str, int] = {}
    for r in recs:
        states[r.state] = states.get(r.state, 0) + 1
    in_table = sum(len(m.trials) for m in ranked)
    dup = sum(r.duplicate_of is not None for r in recs)
    roles = {role: sum(m.role == role for m in ranked) for role in ("candidate", "default", "baseline")}
    return (f"{len(ranked)} methods in the table ({roles['candidate']} candidates, {roles['default']} default, "
            f"{roles['baseline']} baselines), from {in_table} trials with a result; {dup} more trials reused an "
            f"identical training instead of running it; trials by state: "
            + ", ".join(f"{k.lower()} {v}" for k, v in sorted(states.items())))


_STYLE = """body {{ font-family: sans-serif; margin: 2em; color: #222; max-width: 1100px; }}
table {{ border-collapse: collapse; font-size: 13px; margin: 0.5em 0; }}
td, th {{ border: 1px solid #ccc; padding: 2px 6px; text-align: left; vertical-align: top; }}
tr.default, tr.baseline {{ background: #f3f3f3; }} tr.best {{ background: #e6f4e6; font-weight: bold; }}
table.heat td {{ text-align: center; min-width: 7em; }} td.none {{ color: #aaa; }}
svg text {{ font-size: 11px; }} svg .title {{ font-size: 13px; font-weight: bold; }}
svg .axis {{ stroke: #444; }} svg .grid {{ stroke: #e4e4e4; }} svg .target {{ stroke: #000; stroke-dasharray: 6 4; }}
code {{ font-size: 12px; }} .note {{ font-size: 12px; color: #555; }}
{extra}"""
# the recommendation's lines as the CLI prints them (an indented line stays indented), each begun with a capital
_LINES_CSS = ("#summary p { margin: 0.2em 0; white-space: pre-wrap; } "
              "#summary p::first-letter { text-transform: uppercase; }")


def _failures(recs: list[res.TrialRecord]) -> str:
    """The trials whose training raised: trial, role, spec, error, and the traceback folded under it."""
    failed = [r for r in recs if r.error is not None]
    if not failed:
        return ""
    rows = "".join(f"<tr><td>{r.number}</td><td>{escape(r.role)}</td><td><code>{escape(r.spec)}</code></td>"
                   f"<td>{escape(r.error)}"
                   f"<details><summary>traceback</summary><pre>{escape(r.traceback or '-')}</pre></details></td></tr>"
                   for r in failed)
    return (f'<h2>Failed trials</h2><p class="note">{escape(res.failure_note(recs))}</p>'
            '<div id="failures"><table><thead><tr><th>trial</th><th>role</th><th>spec</th><th>error</th></tr></thead>'
            f"<tbody>{rows}</tbody></table></div>")


def _page(title: str, css: str, body: str) -> str:
    return (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">\n<title>{escape(title)}</title>\n'
            f"<style>\n{_STYLE.format(extra=css)}\n</style></head><body>\n<h1>{escape(title)}</h1>\n{body}\n"
            "</body></html>\n")


def render_composition(study: Any, config: Any) -> str:
    """The page for a composition: set-up, the composed spec, the tree of stages, the stage table, curves."""
    from lrkit.lrbench.composition.stagewise import summarize_composition
    from lrkit.lrbench.report.tree_chart import TREE_CSS, tree_svg
    from lrkit.lrbench.tasks.optimizers import describe

    comp = summarize_composition(study, config)
    best = comp.best
    chosen = [n for n in comp.nodes if n.number in comp.chosen]
    rows = "".join(
        ('<tr class="best">' if n.number in comp.chosen else "<tr>")
        + "".join(f"<td>{escape(c)}</td>" for c in (n.stage + 1, n.number, fmt(n.parent), n.kind, n.until,
                                                  fmt(n.val_acc), fmt(n.steps_to_target),
                                                  fmt(n.test_steps_to_target)))
        + f"<td><code>{escape(n.segment)}</code></td></tr>" for n in comp.nodes)
    table = ("<table><thead><tr>" + "".join(f"<th>{h}</th>" for h in (
        "stage", "trial", "parent", "kind", "until", f"{escape(config.on)} acc", f"{escape(config.on)} updates",
        "test updates", "segment")) + f"</tr></thead><tbody>{rows}</tbody></table>")
    summary = (f"<p>Composed: <b>{escape(describe(best.optimizer, best.optimizer_kwargs))}</b> with "
               f"<code>{escape(best.spec)}</code>; {escape(config.on)} accuracy "
               + (f"reached the target {config.target:g} at update {best.steps_to_target}, test at "
                  f"{escape(fmt(best.test_steps_to_target))}" if best.steps_to_target is not None else
                  f"{escape(fmt(best.val_acc))} at the end (target {config.target:g} not reached)")
               + '.</p><p>Re-run it: <code id="rerun">' + escape(comp.rerun) + "</code></p>") if best else (
        "<p>No stage trial has finished yet.</p>")
    lr = line_chart([(f"#{n.number} {n.kind}", *_lr_series(n.spec, config.budget)) for n in chosen[-1:]],
                    title="the composed policy", xlabel="update t",
                    ylabel=("multiplier of the optimizer's own step size" if _lr_free(config.optimizer) else
                            "learning rate"), width=CHART_WIDTH) if chosen else ""
    ends = config.compose.get("boundaries", [])
    setup = (f"task <b>{escape(config.task)}</b>, target {config.target:g} on {escape(config.on)} accuracy, budget "
             f"{config.budget} updates, stage ends {escape(ends)}, {escape(config.compose.get('candidates'))} "
             "candidates, "
             f"beam {escape(config.compose.get('beam'))}, optimizer {escape(config.optimizer)}, seed {config.seed}; "
             f"{len(comp.nodes)} stage trials.")
    return _page(f"lrkit composition: {study.study_name}", TREE_CSS, f"""
<p id="setup">{setup}</p>
<div id="summary">{summary}</div>
<h2>The tree of stages</h2><div id="tree">{tree_svg(comp.nodes, comp.chosen, config.budget)}</div>
<h2>The composed LR</h2><div id="lr-chart">{lr}</div>
<h2>Every stage trial</h2><div id="stages">{table}</div>
{_failures(res.records(study))}""")


def _which(ms: list[res.MethodRecord], top_n: int, rec: Any) -> str:
    """Which of the methods shown ``ms`` are: "the top 3 candidates, the best baseline and the default"."""
    picked = sum(m.role == "candidate" for m in ms)
    what = ([f"the top {picked} candidate{'s' if picked != 1 else ''}" if picked == top_n else
             f"{picked} of the top {top_n} candidates"] if picked else [] if top_n else ["no candidates yet"])
    what += [label for m, label in ((rec.best_baseline, "the best baseline"), (rec.default, "the default"))
             if m is not None and any(m is x for x in ms)]
    return ", ".join(what[:-1]) + " and " + what[-1] if len(what) > 1 else what[0]


def _charts(shown: list[res.MethodRecord], top_n: int, rec: Any, config: Any) -> str:
    """The LR chart (real LRs, log axis), the LR-free optimizers' multiplier chart, and the accuracy chart; a
    method has the same colour on each (its place in ``shown``)."""
    free = [i for i, m in enumerate(shown) if _lr_free(m.optimizer)]
    real = [i for i in range(len(shown)) if i not in free]
    out = []
    if real or not free:
        ms = [shown[i] for i in real]
        out.append('<h2>LR curves</h2><div id="lr-chart">' + line_chart(
            [(_name(m), *_lr_series(m.spec, config.budget)) for m in ms], keys=real,
            title=f"LR policies: {_which(ms, top_n, rec)}", xlabel="update t", ylabel="learning rate (log scale)",
            width=CHART_WIDTH, log_y=True) + "</div>")
    if free:
        ms = [shown[i] for i in free]
        out.append('<h2>LR-free optimizers: the policy is a multiplier</h2><div id="multiplier-chart">' + line_chart(
            [(_name(m), *_lr_series(m.spec, config.budget)) for m in ms], keys=free,
            title=f"the policy's multiplier of the optimizer's own step size: {_which(ms, top_n, rec)}",
            xlabel="update t", ylabel="multiplier of the optimizer's own step size", width=CHART_WIDTH)
            + f'<p class="note">{escape(MULTIPLIER_NOTE)}</p></div>')
    acc = [(_name(m), *_acc_series(m, config.on)) for m in shown]
    out.append('<h2>Accuracy</h2><div id="acc-chart">' + line_chart(
        acc, keys=list(range(len(shown))), title=f"{config.on} accuracy against updates (the first seed of each)",
        xlabel="update t", ylabel=f"{config.on} accuracy", hline=config.target,
        hline_label=f"target {config.target:g}", width=CHART_WIDTH, y_range=fit_range(acc, (config.target,)))
        + f'<p class="note">{escape(ACC_NOTE)}</p></div>')
    return "\n".join(out)


def render(study: Any, *, top: int = 5) -> str:
    """The report page for ``study`` as an HTML string (a composition gets its own page)."""
    from lrkit.lrbench.search.recommend import summarize
    from lrkit.lrbench.study.config import StudyConfig
    from lrkit.lrbench.study.schema import ATTR_CONFIG
    from lrkit.lrbench.tasks.optimizers import describe

    config = StudyConfig.from_dict(study.user_attrs.get(ATTR_CONFIG, {}))
    if config.compose:
        return render_composition(study, config)
    recs = res.records(study)  # read once: the recommendation, its cost, the counts and the failures
    rec = summarize(study, config, recs=recs)
    shown = [m for m in rec.ranked if m.role == "candidate"][:top]
    top_n = len(shown)
    shown += [m for m in (rec.best_baseline, rec.default) if m is not None]
    charts = _charts(shown, top_n, rec, config)
    ranges = "; ".join(f"{escape(o)} [{float(r[0]):.3g}, {float(r[1]):.3g}] "
                       + ("given" if r[2] == "given" else f"by {escape(r[2])}") for o, r in config.lr_ranges.items())
    setup = (f"task <b>{escape(config.task)}</b>, target {config.target:g} on {escape(config.on)} accuracy, budget "
             f"{config.budget} updates, " + (f"evaluated every {config.eval_every} updates" if config.eval_every else
                                                "evaluated at the task's interval") + "; optimizers searched: "
             f"{escape(', '.join(config.searched))}; task optimizer "
             f"{escape(describe(config.optimizer, dict(config.optimizer_kwargs)))}; seeds "
             f"{escape(', '.join(map(str, config.judging_seeds)))}; LR ranges: {ranges or '-'}; pruner "
             f"{escape(config.pruner)}.")
    return _page(f"lrkit recommendation: {study.study_name}", _LINES_CSS, f"""
<p id="setup">{setup}</p>
<div id="summary">{_recommendation(rec)}</div>
<h2>The recommendation beside what a user would pick instead</h2><div id="peers">{_summary_table(rec)}</div>
{charts}
<h2>Policy family × optimizer</h2><div id="heatmap">{_heatmap(rec.ranked, config.budget)}</div>
<h2>Ranked methods</h2><p id="counts" class="note">{escape(_counts(recs, rec.ranked))}</p>
<div id="ranking">{_ranking(rec.ranked, config.on)}</div>
{_failures(recs)}
""")


def write_report(study: Any, path: str, *, top: int = 5, overwrite: bool = False) -> str:
    """Write :func:`render`'s page to ``path`` (UTF-8); returns the path.

    An existing file is replaced only with ``overwrite``; the folder must exist.
    """
    from lrkit.plotting import output_path

    out = output_path(path, ".html", (".html", ".htm"), overwrite, what="an HTML page", param="-o")
    page = render(study, top=top)
    try:
        out.write_text(page, encoding="utf-8")
    except OSError as err:
        raise LRKitError(f"cannot write the report to -o {str(out)!r}: {err.strerror or err} (give a file in a folder "
                         "you can write to)") from None
    return str(out)
