"""A study written by an earlier lrkit (tests/data/study-0.1.db, see its README) opens, reads the same,
continues and reports after LRBench's move into sub-packages."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from lrkit.cli.main import main

DATA = Path(__file__).parent / "data"


@pytest.fixture()
def old_db(tmp_path: Path) -> str:
    shutil.copy(DATA / "study-0.1.db", tmp_path / "study.db")
    return f"sqlite:///{tmp_path / 'study.db'}"


def _contains(new, old) -> bool:  # noqa: ANN001
    """``new`` holds everything ``old`` held (a later lrkit may add fields, never change or drop one)."""
    if isinstance(old, dict):
        return isinstance(new, dict) and all(k in new and _contains(new[k], v) for k, v in old.items())
    if isinstance(old, list):
        return isinstance(new, list) and len(new) == len(old) and all(map(_contains, new, old))
    return new == old


@pytest.mark.parametrize("study", ["rec", "comp"])
def test_results_read_an_old_study_as_its_own_lrkit_did(study: str, old_db: str, capsys) -> None:  # noqa: ANN001
    assert main(["results", "--storage", old_db, "--study", study, "--format", "json"]) == 0
    now = json.loads(capsys.readouterr().out)
    then = json.loads((DATA / f"study-0.1-{study}.json").read_text())
    if "verify" in then:  # --seeds was then a count for seed 0 alone ("--seeds 1"); it is now a list of seeds
        then["verify"] = then["verify"].replace(" --seeds 1 ", " --seeds 0 ")
    for row in then if isinstance(then, list) else []:  # a candidate is now "OPTIMIZER (candidate)", not a baseline's name
        if row.get("role") == "candidate":
            row["method"] += " (candidate)"
    assert _contains(now, then)
    assert not _contains({"x": 1}, {"x": 2})  # the comparison can fail


def test_an_old_recommendation_continues_and_reports(old_db: str, tmp_path: Path, capsys) -> None:  # noqa: ANN001
    before = json.loads((DATA / "study-0.1-rec.json").read_text())
    code = main(["recommend", "--task", "digits-mlp", "--target", "0.9", "--budget", "300", "--trials", "4",
                 "--storage", old_db, "--study", "rec", "--no-progress", "--json"])
    out = json.loads(capsys.readouterr().out)
    assert code in (0, 1) and len(out["ranking"]) >= len(before)  # one more candidate, nothing lost
    assert {m["spec"] for m in before} <= {m["spec"] for m in out["ranking"]}
    page = tmp_path / "report.html"
    assert main(["report", "--storage", old_db, "--study", "rec", "-o", str(page)]) == 0
    assert "digits-mlp" in page.read_text()
    assert main(["report", "--storage", old_db, "--study", "comp", "-o", str(tmp_path / "comp.html")]) == 0
