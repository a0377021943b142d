"""The HTML report: self-contained, every user string escaped, and it renders in headless Chromium."""

from __future__ import annotations

import html
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest
from fakes import FakeRunner

from lrkit.lrbench.study import ranking as res
from lrkit.lrbench.search.recommend import recommend
from lrkit.lrbench.report.page import render, write_report
from lrkit.lrbench.study.storage import load_study, open_storage
from lrkit.lrbench.report.line_chart import COLORS, fit_range, line_chart

CHROMIUM = shutil.which("chromium") or ("/usr/bin/chromium" if Path("/usr/bin/chromium").exists() else None)
EVIL = '<script>alert("x")</script>&<b>'


@pytest.fixture(scope="module")
def study(tmp_path_factory):  # noqa: ANN201
    path = tmp_path_factory.mktemp("report") / "s.db"
    recommend("digits-mlp", target=0.9, budget=1000, n_trials=6, storage=f"sqlite:///{path}", study_name=EVIL,
              lr_range=(0.005, 0.2), runner=FakeRunner(speed={"adam": 2.0}), optimizers=("sgd", "adam"),
              baselines=("adam", "prodigy"), eval_every=100, repeats=1)
    return load_study(open_storage(f"sqlite:///{path}"), EVIL)[0]


def test_page_is_self_contained_and_escapes_user_strings(study) -> None:  # noqa: ANN001
    page = render(study)
    assert EVIL not in page and "<script" not in page
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;&amp;&lt;b&gt;" in page
    assert not re.search(r"""(src|href)=["']?(https?:|//)""", page), "no external resources"
    assert page.count('role="img"') == 3 and page.count("<polyline") >= 4  # LR, multiplier and accuracy charts
    assert "target 0.9" in page and "Ranked methods" in page
    assert 'id="peers"' in page and "baseline prodigy" in page and 'id="heatmap"' in page
    assert "{" not in re.sub(r"<style>.*?</style>", "", page, flags=re.S)  # no Python dict printed anywhere


def test_the_recommendation_is_its_own_lines_marked_up(study) -> None:  # noqa: ANN001
    from lrkit.lrbench.search.recommend import summarize
    from lrkit.lrbench.study.config import StudyConfig

    rec = summarize(study, StudyConfig.from_dict(study.user_attrs["lrkit_config"]))
    summary = re.search(r'<div id="summary">(.*?)</div>', render(study), re.S).group(1)
    shown = [html.unescape(re.sub(r"<[^>]+>", "", p)) for p in re.findall(r"<p>(.*?)</p>", summary)]
    assert shown == rec.summary_lines()  # the CLI's sentences, word for word (the page only adds markup)
    assert summary.startswith("<p><b>recommended: ") and f"<code>{html.escape(rec.best.spec)}</code>" in summary
    said = "the search's best candidate" if rec.is_baseline else "speed-up over the best baseline"
    assert html.escape(said) in summary and f"<code>{html.escape(rec.config.default_spec)}</code>" in summary
    assert html.unescape(re.search(r'<code id="rerun">(.*?)</code>', summary).group(1)) == rec.rerun


def test_counts_match_the_table_and_the_rerun_command_has_every_flag(study) -> None:  # noqa: ANN001
    page = render(study)
    ranked = res.rank(res.records(study))
    rows = re.search(r'<div id="ranking">.*?</tbody>', page, re.S).group(0).count("<tr class=")
    assert rows == len(ranked)
    assert f"{len(ranked)} methods in the table" in page
    rerun = html.unescape(re.search(r'<code id="rerun">(.*?)</code>', page).group(1))
    for flag in ("--eval-every 100", "--optimizer", "--seeds 0,1", "--budget 1000"):
        assert flag in rerun, (flag, rerun)


def test_chart_ticks_are_round_and_identical_curves_are_named_together() -> None:
    page = line_chart([("a", [0, 374, 499], [0.0, 0.064, 0.192]), ("b", [0, 374, 499], [0.0, 0.064, 0.192]),
                       ("c", [0, 499], [0.1, 0.1])], title="t", xlabel="x", ylabel="y")
    ticks = re.findall(r'text-anchor="middle">([0-9.]+)</text>', page)
    assert ticks[:6] == ["0", "100", "200", "300", "400", "500"]
    assert ">0.05<" in page and "374" not in ticks and "0.064" not in page
    assert page.count("<polyline") == 2 and "a = b (same curve)" in page


def test_curves_coincide_by_lrkit_plots_rule() -> None:
    from lrkit.plotting import COINCIDE_RTOL

    near, apart = 0.5 * COINCIDE_RTOL, 3 * COINCIDE_RTOL  # of the largest value drawn (1.0 here)
    page = line_chart([("a", [0, 1, 2], [1.0, 0.5, 0.1]), ("b", [0, 1, 2], [1.0, 0.5 + near, 0.1]),
                       ("c", [0, 1, 2], [1.0, 0.5 + apart, 0.1]), ("d", [0, 1, 3], [1.0, 0.5, 0.1])],
                      title="t", xlabel="x", ylabel="y")
    legend = re.findall(r'class="legend">(.*?)</text>', page)
    # b would hide under a; c is three times the rule's distance away; d is at other updates
    assert legend == ["a = b (same curve)", "c", "d"] and page.count("<polyline") == 3
    log = line_chart([("a", [0, 1], [1e-4, 1.0]), ("b", [0, 1], [1e-4 * (1 + apart), 1.0])], title="t",
                     xlabel="x", ylabel="y", log_y=True)
    assert log.count("<polyline") == 2  # on a log axis the rule is pointwise: small LRs are told apart


def test_a_log_axis_keeps_lrs_of_different_scales_apart() -> None:
    page = line_chart([("sgd", [0, 500], [0.1, 0.001]), ("adam", [0, 500], [0.001, 0.0]), ("prodigy", [0, 500], [1, 1])],
                      title="t", xlabel="x", ylabel="y", log_y=True)
    labels = re.findall(r'text-anchor="end">([^<]+)</text>', page)
    assert labels[:4] == ["0.001", "0.01", "0.1", "1"] and page.count("<polyline") == 3
    # the point at 0 (no log) is left out, not drawn at the bottom
    assert len(re.findall(r'points="([^"]*)"', page)[1].split()) == 1


def test_long_labels_wrap_instead_of_being_cut() -> None:
    label = "#1 adam · " + ", ".join(f"param{i}=0.00{i}" for i in range(30))
    page = line_chart([(label, [0, 1], [0, 1])], title="t", xlabel="x", ylabel="y", width=500)
    legend = re.findall(r'class="legend">(.*?)</text>', page)
    assert len(legend) > 1 and " ".join(legend).replace("  ", " ").count("param") == 30
    assert all(len(line) <= (500 - 40) // 6 for line in legend)
    assert all(line.endswith(",") for line in legend[:-1])  # broken after a comma, never inside a value


def test_chart_without_data_says_so() -> None:
    assert "no data yet" in line_chart([], title="t", xlabel="x", ylabel="y")


@pytest.mark.skipif(CHROMIUM is None, reason="Chromium is not installed (/usr/bin/chromium)")
def test_page_renders_in_headless_chromium(study, tmp_path: Path) -> None:  # noqa: ANN001
    page = write_report(study, str(tmp_path / "report.html"))
    profile = tempfile.mkdtemp(prefix="lrkit-chromium-")
    try:
        proc = subprocess.run(
            [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             f"--user-data-dir={profile}", "--dump-dom", Path(page).resolve().as_uri()],
            capture_output=True, text=True, timeout=120)
    finally:
        shutil.rmtree(profile, ignore_errors=True)
    dom = proc.stdout
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert 'id="lr-chart"' in dom and 'id="acc-chart"' in dom and 'id="ranking"' in dom
    assert dom.count("<polyline") >= 4 and "<tr" in dom
    assert "<script" not in dom  # the study name stayed text


def test_the_lr_chart_title_counts_the_candidates_it_draws(study) -> None:  # noqa: ANN001
    candidates = sum(m.role == "candidate" for m in res.rank(res.records(study)))
    for top in (2, 50):
        page = render(study, top=top)
        drawn = min(top, candidates)
        # the best baseline is Prodigy: its policy is a multiplier, drawn on a chart of its own
        assert f"LR policies: the top {drawn} candidates and the default" in page
        assert "multiplier of the optimizer&#x27;s own step size: the best baseline" in page
    assert re.search(r"seeds 0, 1; LR ranges: sgd \[0\.005, 0\.2\] given; adam \[0\.005, 0\.2\] given", render(study))


def _chart(page: str, div: str) -> str:
    return re.search(rf'<div id="{div}">(.*?)</div>', page, re.S).group(1)


def _strokes(svg: str) -> list[tuple[str, str]]:
    """Each drawn curve's (colour, dash)."""
    return [(c, d or "") for c, d in re.findall(r'<polyline fill="none" stroke="([^"]+)" stroke-width="[^"]+"'
                                                r'(?: stroke-dasharray="([^"]+)")?', svg)]


def test_lr_free_optimizers_are_drawn_as_multipliers_on_their_own_chart(study) -> None:  # noqa: ANN001
    page = render(study)
    lr, multiplier = _chart(page, "lr-chart"), _chart(page, "multiplier-chart")
    assert "prodigy" not in lr.lower() and "learning rate (log scale)" in lr
    assert "baseline prodigy" in multiplier and "multiplier of the optimizer&#x27;s own step size" in multiplier
    assert "not the step size the optimizer estimated" in multiplier  # the caption says what is drawn and why
    assert _strokes(lr) and _strokes(multiplier)


def test_each_method_keeps_one_colour_and_no_two_curves_share_one(study) -> None:  # noqa: ANN001
    page = render(study)
    colour = {}
    for div in ("lr-chart", "multiplier-chart", "acc-chart"):
        svg = _chart(page, div)
        names = re.findall(r'class="legend">(#\d+ [^<]*)</text>', svg)
        strokes = _strokes(svg)
        assert len(set(strokes)) == len(strokes) == len(names)
        for name, stroke in zip(names, strokes):
            assert colour.setdefault(name, stroke) == stroke, (div, name)
    assert len(set(colour.values())) == len(colour) >= 7


@pytest.mark.parametrize("n", [2, len(COLORS), len(COLORS) + 5])
def test_drawn_curves_have_distinct_colours_up_to_the_palette_size(n: int) -> None:
    series = [(f"s{i}", [0, 1], [i, i + 1.0]) for i in range(n)]
    for keys in (None, list(range(n)), [10 * k for k in range(n)]):  # keys that would collide fall back
        strokes = _strokes(line_chart(series, title="t", xlabel="x", ylabel="y", keys=keys))
        assert len(strokes) == n and len(set(strokes)) == n  # colour and dash never both repeat
        assert len({c for c, _ in strokes[:len(COLORS)]}) == min(n, len(COLORS))
    three = [(f"s{i}", [0, 1], [i, i + 1.0]) for i in range(3)]
    assert _strokes(line_chart(three, title="t", xlabel="x", ylabel="y", keys=[4, 0, 2])) == [
        (COLORS[4], ""), (COLORS[0], ""), (COLORS[2], "")]  # a key is the series' colour, on every chart


def _y_ticks(svg: str) -> list[float]:
    return [float(t) for t in re.findall(r'<text x="\d+" y="[0-9.]+" text-anchor="end">([0-9.]+)</text>', svg)]


def test_the_accuracy_axis_fits_curves_in_a_narrow_band() -> None:
    curves = [(f"run {i}", [0, 100, 200, 300], [0.1, 0.75 + 0.01 * i, 0.77 + 0.01 * i, 0.78 + 0.005 * i])
              for i in range(3)]
    low, high = fit_range(curves, (0.79,))
    assert (low, high) == (0.75, 0.79)  # the first evaluations (near chance) are not of interest
    svg = line_chart(curves, title="t", xlabel="x", ylabel="acc", hline=0.79, hline_label="target",
                     y_range=(low, high))
    ticks = _y_ticks(svg)
    assert 0.7 <= ticks[0] <= 0.75 and 0.79 <= ticks[-1] <= 0.8 and ticks[-1] - ticks[0] <= 0.06, ticks
    assert 'class="target"' in svg  # the target line is inside the range
    # a run far below the others (the default that never learns) goes off the bottom, named in the legend
    failing = ("default", [0, 100, 200, 300, 400], [0.1, 0.2, 0.3, 0.35, 0.4])
    assert fit_range([*curves, failing], (0.79,)) == (0.75, 0.79)
    svg = line_chart([*curves, failing], title="t", xlabel="x", ylabel="acc", y_range=fit_range([*curves, failing]))
    assert _y_ticks(svg)[0] >= 0.7 and "default [below the axis: at most 0.4]" in svg
    # a target below the curves is still drawn: the range stretches to it
    assert fit_range(curves, (0.5,))[0] == 0.5


def test_the_report_accuracy_axis_runs_from_just_below_to_just_above_the_values_of_interest(study) -> None:  # noqa: ANN001
    from lrkit.lrbench.report.page import _acc_series
    from lrkit.lrbench.search.recommend import summarize
    from lrkit.lrbench.study.config import StudyConfig

    rec = summarize(study, StudyConfig.from_dict(study.user_attrs["lrkit_config"]))
    shown = [m for m in rec.ranked if m.role == "candidate"][:5] + [rec.best_baseline, rec.default]
    low, high = fit_range([(m.spec, *_acc_series(m, "val")) for m in shown], (0.9,))
    ticks = _y_ticks(_chart(render(study), "acc-chart"))
    assert ticks[0] <= low < ticks[1] and ticks[-2] < high <= ticks[-1] and ticks[0] <= 0.9 <= ticks[-1]
