"""Watching a running study: `lrkit results` beside a working worker, and optuna-dashboard on the same storage."""

from __future__ import annotations

import io
import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
from fakes import FakeRunner
from optuna.trial import TrialState

from lrkit.cli.main import main
from lrkit.lrbench.search.recommend import recommend
from lrkit.lrbench.study.schema import SUMMARY_ATTRS
from lrkit.lrbench.study.storage import load_study, open_storage

TESTS = Path(__file__).parent


def test_results_reads_a_study_while_a_worker_runs_it(tmp_path: Path, capsys) -> None:  # noqa: ANN001
    url = f"sqlite:///{tmp_path / 'live.db'}"
    recommend("test_workers:slow_task", target=0.97, budget=200, n_trials=3, storage=url, study_name="live",
              lr_range=(0.02, 0.5), families=("fixed", "cosine"), create_only=True, optimizer="sgd", baselines=())
    env = {**__import__("os").environ, "PYTHONPATH": str(TESTS)}
    worker = subprocess.Popen([sys.executable, "-m", "lrkit.cli.main", "worker", "--study", "live", "--storage", url,
                               "--no-progress"], cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True)
    seen_running = seen_done = False
    deadline = time.monotonic() + 90
    try:
        while time.monotonic() < deadline and not (seen_running and seen_done):
            time.sleep(0.2)
            assert main(["results", "--storage", url, "--study", "live", "--all"]) == 0
            out = capsys.readouterr().out
            seen_running |= " RUNNING " in out
            if " COMPLETE " in out:
                assert main(["results", "--storage", url, "--study", "live"]) == 0
                ranked = capsys.readouterr().out
                seen_done |= ranked.splitlines()[1].startswith("1 ")
    finally:
        worker.communicate(timeout=120)
    assert worker.returncode == 0
    assert seen_running and seen_done, "results never showed a running trial and a ranked finished one"


def test_optuna_dashboard_serves_lrkits_trial_attributes(tmp_path: Path) -> None:
    dashboard = pytest.importorskip("optuna_dashboard")
    url = f"sqlite:///{tmp_path / 's.db'}"
    recommend("digits-mlp", target=0.9, budget=500, n_trials=2, storage=url, lr_range=(0.01, 0.2),
              runner=FakeRunner(), optimizer="sgd", baselines=(), study_name="watched", repeats=0)  # one seed: 3 trials
    app = dashboard.wsgi(open_storage(url))

    def get(path: str) -> dict:
        status = []
        environ = {"REQUEST_METHOD": "GET", "PATH_INFO": path, "QUERY_STRING": "", "wsgi.input": io.BytesIO(b""),
                   "wsgi.errors": sys.stderr, "SERVER_NAME": "test", "SERVER_PORT": "80", "wsgi.url_scheme": "http"}
        body = b"".join(app(environ, lambda s, h, exc=None: status.append(s)))
        assert status[0].startswith("200"), status
        return json.loads(body)

    study_id = get("/api/studies")["study_summaries"][0]["study_id"]
    trials = get(f"/api/studies/{study_id}")["trials"]
    stored = load_study(open_storage(url), "watched")[0].get_trials()
    assert len(trials) == len(stored) == 3
    for served, trial in zip(trials, stored):
        attrs = {a["key"]: a["value"] for a in served["user_attrs"]}
        assert {"lrkit_role", "lrkit_optimizer", "lrkit_spec", "lrkit_seed", *SUMMARY_ATTRS} <= set(attrs)
        assert attrs["lrkit_spec"] == trial.user_attrs["lrkit_spec"]
        assert attrs["lrkit_status"] == trial.user_attrs["lrkit_result"]["status"]
        assert trial.state == TrialState.COMPLETE or trial.state == TrialState.PRUNED
