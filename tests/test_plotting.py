"""``lrkit.plotting``: the rule for output files, and plots where no curve or label hides."""

from __future__ import annotations

import numpy as np
import pytest

import lrkit
from lrkit.errors import LRKitError
from lrkit.plotting import LABEL_WIDTH, coincident_groups, image_formats, output_path, plot_policies

TRI = "TRI(k0=0.001, k1=0.006, l=2000)"


def test_output_path_adds_the_default_suffix_and_checks_the_allowed_ones(tmp_path):
    assert output_path(tmp_path / "report", ".html", [".html"], overwrite=False) == tmp_path / "report.html"
    assert output_path(tmp_path / "report", "html", ["html"], overwrite=False) == tmp_path / "report.html"
    assert output_path(tmp_path / "R.HTML", ".html", [".html"], overwrite=False) == tmp_path / "R.HTML"
    assert output_path(tmp_path / "x.whatever", ".json", None, overwrite=False) == tmp_path / "x.whatever"
    with pytest.raises(LRKitError) as info:
        output_path(tmp_path / "report.htm", ".html", [".html", ".svg"], overwrite=False, what="page formats",
                    param="-o")
    assert str(info.value) == (f"`-o` must end in one of .html, .svg (page formats), but got "
                               f"(-o={str(tmp_path / 'report.htm')!r}).")


def test_output_path_never_creates_a_folder_and_never_replaces_unless_asked(tmp_path):
    with pytest.raises(LRKitError, match="does not exist.*lrkit does not create folders"):
        output_path(tmp_path / "nope" / "dir" / "lr.png", ".png", None, overwrite=True)
    assert not (tmp_path / "nope").exists()
    (tmp_path / "file").write_text("x")
    with pytest.raises(LRKitError, match="is not a folder"):
        output_path(tmp_path / "file" / "lr.png", ".png", None, overwrite=True)
    existing = tmp_path / "lr.png"
    existing.write_bytes(b"old")
    with pytest.raises(LRKitError, match="already exists and was left as it is.*--force.*overwrite=True"):
        output_path(existing, ".png", None, overwrite=False)
    with pytest.raises(LRKitError, match="already exists"):
        output_path(tmp_path / "lr", ".png", None, overwrite=False)  # the name it would write exists
    assert output_path(existing, ".png", None, overwrite=True) == existing
    assert existing.read_bytes() == b"old"  # output_path itself writes nothing
    for folder in (tmp_path, f"{tmp_path}/"):
        with pytest.raises(LRKitError, match="must name a file, not a folder"):
            output_path(folder, ".png", None, overwrite=True)


def test_image_formats_are_what_matplotlib_writes():
    formats = image_formats()
    assert {".png", ".svg", ".pdf"} <= set(formats) and ".jpgx" not in formats and list(formats) == sorted(formats)


def test_coincident_curves_are_grouped_within_a_visual_tolerance():
    a = np.array([0.1, 0.2, 0.3])
    assert coincident_groups([a, a * (1 + 1e-5), a * 1.5, a.copy()]) == [0, 0, 2, 0]
    assert coincident_groups([a, a + 0.01]) == [0, 1]
    # on a log axis closeness is relative: a small LR differing by 50% is visible there
    small = np.array([0.1, 1e-4])
    assert coincident_groups([small, np.array([0.1, 1.5e-4])]) == [0, 0]
    assert coincident_groups([small, np.array([0.1, 1.5e-4])], log_y=True) == [0, 1]


@pytest.fixture
def figures(monkeypatch):
    """Every figure plot_policies makes, to inspect after it was saved."""
    import lrkit.plotting as plotting

    made, original = [], plotting.new_figure

    def spy(*args, **kwargs):
        made.append(original(*args, **kwargs))
        return made[-1]

    monkeypatch.setattr(plotting, "new_figure", spy)
    return made


def _legend_of(fig):
    legend = fig.legends[0]
    return [t.get_text() for t in legend.get_texts()], [(line.get_linestyle(), line.get_linewidth())
                                                       for line in fig.axes[0].get_lines()]


def test_identical_curves_get_distinct_styles_and_the_legend_says_so(tmp_path, figures):
    plot_policies([TRI, "triangular(base_lr=0.001, max_lr=0.006, step_size=2000)", "FIX(k0=0.003)"], 8000,
                  tmp_path / "same.png")
    labels, styles = _legend_of(figures[-1])
    assert labels == ["1. TRI(k0=0.001, k1=0.006, l=2000)  (coincides with 2)",
                      "2. triangular(base_lr=0.001, max_lr=0.006, step_size=2000)  (coincides with 1)",
                      "3. FIX(k0=0.003)"]
    assert styles[0] != styles[1]  # both stay visible
    assert figures[-1].legends[0].get_window_extent().y1 < figures[-1].axes[0].get_window_extent().y0  # below
    plot_policies([TRI, "FIX(k0=0.003)"], 8000, tmp_path / "apart.png")
    labels, styles = _legend_of(figures[-1])
    assert labels == [TRI, "FIX(k0=0.003)"] and styles[0] == styles[1]  # nothing coincides: plain labels


def test_long_labels_are_wrapped_not_cut(tmp_path, figures):
    spec = ("warmup(sequence([cosine(max_lr=0.006, total_steps=3000, min_lr=0.001), TRI2(k0=0.001, k1=0.004, "
            "l=500), FIX(k0=0.0005)], fractions=[0.3, 0.5, 0.2], total_steps=9000), steps=1000, start_lr=0)")
    policy = lrkit.parse(spec)
    plot_policies([policy], 10000, tmp_path / "long.png")
    (label,), _ = _legend_of(figures[-1])
    assert "\n" in label and "..." not in label
    assert max(len(line) for line in label.splitlines()) <= LABEL_WIDTH
    assert "".join(label.split()) == "".join(policy.spec().split())  # every character is still there
    assert figures[-1].legends[0].get_window_extent().x1 <= figures[-1].bbox.x1 + 1  # inside the figure


def test_a_log_axis_refuses_a_policy_with_no_positive_lr_and_warns_about_nothing(tmp_path):
    import warnings

    with pytest.raises(LRKitError, match=r"`log_y` needs LRs > 0 to draw, but FIX\(k0=0\) is 0 or less at every "
                                         r"step of 0\.\.99; draw it without log_y\."):
        plot_policies(["FIX(k0=0.1)", "FIX(k0=0)"], 100, tmp_path / "zero.png", log_y=True)
    assert not (tmp_path / "zero.png").exists()
    # LRs that touch 0 somewhere still draw (the zeros are left out), and matplotlib says nothing
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        plot_policies(["cosine(max_lr=0.1, total_steps=99)"], 100, tmp_path / "cos.png", log_y=True)
        plot_policies(["FIX(k0=0)"], 100, tmp_path / "linear.png")
    assert (tmp_path / "cos.png").exists() and (tmp_path / "linear.png").exists()
