"""The HTML report: self-contained, every user string escaped, and it renders in headless Chromium."""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest
from test_recommend import FakeRunner

from lrkit.lrbench.recommend import recommend
from lrkit.lrbench.report import render, svg_chart, write_report
from lrkit.lrbench.storage import load_study, open_storage

CHROMIUM = shutil.which("chromium") or ("/usr/bin/chromium" if Path("/usr/bin/chromium").exists() else None)
EVIL = '<script>alert("x")</script>&<b>'


@pytest.fixture(scope="module")
def study(tmp_path_factory):  # noqa: ANN201
    path = tmp_path_factory.mktemp("report") / "s.db"
    recommend("digits-mlp", target=0.9, budget=1000, n_trials=6, storage=f"sqlite:///{path}", study_name=EVIL,
              lr_range=(0.005, 0.2), runner=FakeRunner())
    return load_study(open_storage(f"sqlite:///{path}"), EVIL)[0]


def test_page_is_self_contained_and_escapes_user_strings(study) -> None:  # noqa: ANN001
    page = render(study)
    assert EVIL not in page and "<script" not in page
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;&amp;&lt;b&gt;" in page
    assert not re.search(r"""(src|href)=["']?(https?:|//)""", page), "no external resources"
    assert page.count("<svg") == 2 and page.count("<polyline") >= 4
    assert "target 0.9" in page and "Ranked trials" in page and "Speed-up" in page


def test_svg_chart_without_data_says_so() -> None:
    assert "no data yet" in svg_chart([], title="t", xlabel="x", ylabel="y")


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
