"""A study survives what ends processes and trials (issue 15): a kill before a trial's first heartbeat, a
trial that raises, a kill after a stage trial saved its result, a sampler that only repeats itself.

Kills are real: the command runs in a subprocess whose ``HeartbeatThread.start`` (a trial is RUNNING, its
first heartbeat not yet written) or ``set_trial_state_values(COMPLETE)`` (the result saved, the trial not
yet complete) sends the process SIGKILL at the N-th call (``_killing``). Every rerun has a timeout, so a
regression fails instead of hanging. Tasks are given as ``test_reliability:NAME`` (``PYTHONPATH=tests``).
"""

from __future__ import annotations

import itertools
import os
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import numpy as np
import optuna
import pytest
from fakes import FakeRunner
from optuna.trial import TrialState
from pgserver import pg_server, storage_url  # noqa: F401  (fixtures)

import lrkit.lrbench.study.queue as queue_module
import lrkit.lrbench.search.loop as study_run
from lrkit.lrbench.composition.stagewise import compose, nodes_of
from lrkit.lrbench.study.queue import counted
from lrkit.lrbench.search.recommend import recommend
from lrkit.lrbench.study.config import StudyConfig
from lrkit.lrbench.study.schema import ATTR_ERROR, ATTR_RESULT, ATTR_TRACEBACK
from lrkit.lrbench.study.storage import create_study, load_study, open_storage

TESTS = Path(__file__).parent
TIMING = ["--heartbeat-interval", "1", "--grace-period", "2"]
BUILDS = itertools.count(1)


# ---- tasks ------------------------------------------------------------------------------------------------
def _digits():  # noqa: ANN202
    from lrkit.lrbench.tasks.catalogue import get_task

    return get_task("digits-mlp")


def flaky_task():  # noqa: ANN201
    """digits-mlp whose third model built in the process raises FloatingPointError (one failing trial)."""
    base = _digits()

    def make_model():  # noqa: ANN202
        if next(BUILDS) == 3:
            raise FloatingPointError("overflow in the third model")
        return base.make_model()

    return base.replace(name="digits-flaky", make_model=make_model)


def _with_labels(change):  # noqa: ANN001, ANN202
    base = _digits()

    def load():  # noqa: ANN202
        data = base.load_data()
        return type(data)(data.name, data.train_x, change(data.train_y), data.test_x, change(data.test_y))

    return base.replace(name="digits-bad-labels", load_data=load)


def labels_out_of_range_task():  # noqa: ANN201
    return _with_labels(lambda y: y + 5)  # 5..14 for a model with 10 outputs


def float_labels_task():  # noqa: ANN201
    return _with_labels(lambda y: y.astype(np.float32))


# ---- helpers ----------------------------------------------------------------------------------------------
def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(TESTS), env.get("PYTHONPATH", "")])
    return env


def _lrkit(args: list[str], cwd: Path, timeout: float = 180) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "lrkit.cli.main", *args], cwd=cwd, env=_env(), capture_output=True,
                          text=True, timeout=timeout)


_KILLER = textwrap.dedent("""
    import os, signal, sys
    from optuna.storages import _heartbeat
    from optuna.storages import RDBStorage
    from optuna.trial import TrialState
    where, at = sys.argv[1], int(sys.argv[2])
    calls = [0]
    def maybe_kill():
        calls[0] += 1
        if calls[0] == at:
            os.kill(os.getpid(), signal.SIGKILL)
    if where == "before-heartbeat":  # the trial is RUNNING; its first heartbeat row is not written yet
        start = _heartbeat.HeartbeatThread.start
        def killing_start(self):
            maybe_kill()
            start(self)
        _heartbeat.HeartbeatThread.start = killing_start
    else:  # "before-complete": the result is saved, the trial not yet marked COMPLETE
        set_state = RDBStorage.set_trial_state_values
        def killing_set_state(self, trial_id, state, values=None):
            if state == TrialState.COMPLETE:
                maybe_kill()
            return set_state(self, trial_id, state, values)
        RDBStorage.set_trial_state_values = killing_set_state
    from lrkit.cli.main import main
    sys.exit(main(sys.argv[3:]))
""")


def _killed(where: str, at: int, args: list[str], cwd: Path) -> None:
    """Run ``lrkit ARGS`` and SIGKILL it at the ``at``-th trial start (or completion)."""
    proc = subprocess.run([sys.executable, "-c", _KILLER, where, str(at), *args], cwd=cwd, env=_env(),
                          capture_output=True, text=True, timeout=180)
    assert proc.returncode == -9, (proc.returncode, proc.stderr[-2000:])


def _in_time(function, timeout: float = 120):  # noqa: ANN001, ANN202
    """``function()`` in a thread that must end within ``timeout`` s (a trial nothing fails would hang it)."""
    out: dict = {}

    def run() -> None:
        try:
            out["value"] = function()
        except BaseException as err:  # noqa: BLE001 (re-raised below)
            out["error"] = err

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(timeout)
    assert not thread.is_alive(), f"still waiting after {timeout} s: a trial was never failed"
    if "error" in out:
        raise out["error"]
    return out["value"]


# ---- 1. a trial without a heartbeat ------------------------------------------------------------------------
CONFIG = StudyConfig(task="digits-mlp", target=0.9, budget=300, optimizer="sgd", n_trials=4, lr_range=(0.01, 0.5),
                     lr_range_method="given", default_spec="FIX(k0=0.01)", families=("fixed", "cosine"))


def _silent_trial(url: str, grace: int):  # noqa: ANN202
    """A study with one trial set RUNNING that never wrote a heartbeat (its process died in ``ask``)."""
    store = open_storage(url, heartbeat_interval=1, grace_period=grace)
    study, _ = create_study(store, "s1", CONFIG)
    trial = study.ask()
    trial.set_user_attr("lrkit_spec", "FIX(k0=0.1)")
    return store, study, trial


def test_a_running_trial_that_never_wrote_a_heartbeat_is_failed_after_the_grace_period(storage_url: str) -> None:
    store, study, trial = _silent_trial(storage_url, grace=30)
    optuna.storages.fail_stale_trials(study)
    assert study.get_trials()[0].state == TrialState.RUNNING  # just started: it may still be sampling
    import datetime

    from sqlalchemy import text

    an_hour_ago = datetime.datetime.now(datetime.timezone.utc).replace(tzinfo=None) - datetime.timedelta(hours=1)
    with store.engine.begin() as conn:  # the column holds naive UTC (Optuna >= 5)
        conn.execute(text("UPDATE trials SET datetime_start = :t WHERE trial_id = :id"),
                     {"t": an_hour_ago, "id": trial._trial_id})
    optuna.storages.fail_stale_trials(study)
    trials = study.get_trials()
    assert trials[0].state == TrialState.FAIL
    retry = [t for t in trials if t.state == TrialState.WAITING]
    assert len(retry) == 1 and retry[0].user_attrs["lrkit_spec"] == "FIX(k0=0.1)"


def test_a_silent_trial_is_failed_by_a_process_that_watched_it_for_the_grace_period(storage_url: str) -> None:
    # clock-independent: the trial's start looks recent (a worker whose clock runs behind), yet it is failed
    _, study, _ = _silent_trial(storage_url, grace=2)
    optuna.storages.fail_stale_trials(study)
    assert study.get_trials()[0].state == TrialState.RUNNING
    import time

    time.sleep(2.5)
    optuna.storages.fail_stale_trials(study)
    assert study.get_trials()[0].state == TrialState.FAIL


def test_recommend_killed_before_a_trials_first_heartbeat_is_finished_by_a_worker(storage_url: str,
                                                                                  tmp_path: Path) -> None:
    args = ["recommend", "--task", "digits-mlp", "--target", "0.97", "--budget", "100", "--trials", "3",
            "--optimizer", "sgd", "--baselines", "none", "--lr-range", "0.02:0.5", "--no-lookup", "--no-progress",
            "--storage", storage_url, "--study", "killed"]
    _killed("before-heartbeat", 2, args, tmp_path)  # the default ran; the first candidate was being sampled
    study = load_study(open_storage(storage_url), "killed")[0]
    silent = study.get_trials(states=(TrialState.RUNNING,))
    assert len(silent) == 1 and not silent[0].intermediate_values
    worker = _lrkit(["worker", "--study", "killed", "--storage", storage_url, "--no-progress", *TIMING], tmp_path,
                    timeout=120)
    assert worker.returncode == 0, worker.stderr[-2000:]
    study = load_study(open_storage(storage_url), "killed")[0]
    assert study.get_trials()[silent[0].number].state == TrialState.FAIL
    assert counted(study) == 3 and not study.get_trials(states=(TrialState.RUNNING, TrialState.WAITING))


# ---- 6. a failing trial ------------------------------------------------------------------------------------
def test_a_trial_that_raises_is_stored_with_its_error_and_the_study_goes_on(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'flaky.db'}"
    out = _lrkit(["recommend", "--task", "test_reliability:flaky_task", "--target", "0.97", "--budget", "100",
                  "--trials", "3", "--optimizer", "sgd", "--baselines", "none", "--lr-range", "0.02:0.5",
                  "--no-lookup", "--no-progress", "--storage", url], tmp_path)
    assert out.returncode == 0 and "Traceback" not in out.stderr, out.stderr[-2000:]
    assert "failed: FloatingPointError: overflow in the third model; stored as FAIL" in out.stderr
    assert "1 trial failed" in out.stdout
    study = load_study(open_storage(url), None)[0]
    failed = study.get_trials(states=(TrialState.FAIL,))
    assert len(failed) == 1 and failed[0].user_attrs[ATTR_ERROR] == "FloatingPointError: overflow in the third model"
    assert "make_model" in failed[0].user_attrs[ATTR_TRACEBACK]
    assert counted(study) == 3  # the failed candidate is not counted: another one was sampled
    listed = _lrkit(["results", "--all", "--storage", url], tmp_path)
    assert listed.returncode == 0 and "(failed: FloatingPointError: overflow in the third model)" in listed.stdout
    assert "1 trial failed" in listed.stdout
    report = _lrkit(["report", "--storage", url, "-o", str(tmp_path / "r.html")], tmp_path)
    assert report.returncode == 0, report.stderr
    page = (tmp_path / "r.html").read_text()
    assert 'id="failures"' in page and "overflow in the third model" in page


def test_a_composition_with_a_failing_stage_trial_completes(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'flaky.db'}"
    out = _lrkit(["compose", "--task", "test_reliability:flaky_task", "--target", "0.999", "--budget", "200",
                  "--stages", "2", "--candidates", "2", "--beam", "1", "--lr-range", "0.02:0.5", "--no-lookup",
                  "--no-progress", "--storage", url], tmp_path)
    assert out.returncode == 0 and "Traceback" not in out.stderr, out.stderr[-2000:]
    assert "1 trial failed" in out.stdout and "composed:" in out.stdout
    study = load_study(open_storage(url), None)[0]
    assert len(study.get_trials(states=(TrialState.FAIL,))) == 1
    assert len(nodes_of(study)) == 3  # 1 of stage 1 (the other failed), 2 of stage 2


def test_every_trial_failing_stops_the_study_with_an_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        raise RuntimeError("the task's loss is broken")

    from lrkit.errors import LRKitError

    with pytest.raises(LRKitError, match=r"the last 5 trials failed .* RuntimeError: the task's loss is broken"):
        recommend("digits-mlp", target=0.9, budget=100, n_trials=20, storage=f"sqlite:///{tmp_path / 'x.db'}",
                  lr_range=(0.01, 0.5), runner=broken, optimizer="sgd", baselines=(), lookup=False)


@pytest.mark.parametrize(("task", "message"), [
    ("test_reliability:labels_out_of_range_task", r"train y must be below 10 \(the model's 10 outputs\), but holds "
                                                  r"label 14"),
    ("test_reliability:float_labels_task", r"train y must be int64 class indices, but got float32"),
    ("broken_module:task", r"importing module 'broken_module' for task 'broken_module:task' failed: "
                           r"ZeroDivisionError: division by zero \(.*broken_module.py, line 2\)"),
])
def test_a_mistake_in_the_task_is_an_error_before_anything_is_stored(tmp_path: Path, task: str, message: str) -> None:
    (tmp_path / "broken_module.py").write_text("import math\nx = 1 / 0\n")
    for command in (["recommend", "--trials", "2", "--optimizer", "sgd", "--baselines", "none"],
                    ["compose", "--stages", "2"]):
        out = _lrkit([*command, "--task", task, "--budget", "100", "--lr-range", "0.02:0.5", "--no-progress",
                      "--storage", str(tmp_path / "x.db")], tmp_path, timeout=60)
        assert out.returncode == 2 and "Traceback" not in out.stderr, out.stderr[-2000:]
        import re

        assert re.search(message, out.stderr), out.stderr
    assert not (tmp_path / "x.db").exists()


# ---- 7. compose after a crash --------------------------------------------------------------------------------
COMPOSE = dict(target=0.999, budget=300, stages=3, candidates=4, beam=1, lr_range=(0.02, 0.5), lookup=False,
               families=("fixed", "cosine", "exponential", "step"))
COMPOSE_ARGS = ["compose", "--task", "digits-mlp", "--target", "0.999", "--budget", "300", "--stages", "3",
                "--candidates", "4", "--beam", "1", "--lr-range", "0.02:0.5", "--no-lookup", "--families",
                "fixed,cosine,exponential,step", "--no-progress"]


def _tree(comp) -> list[tuple]:  # noqa: ANN001
    return sorted((n.stage, n.position, n.segment) for n in comp.nodes)


@pytest.mark.parametrize("where", ["before-heartbeat", "before-complete"])
def test_compose_rerun_after_a_kill_gives_the_same_composition(tmp_path: Path, where: str) -> None:
    reference = compose("digits-mlp", storage=f"sqlite:///{tmp_path / 'ref.db'}", **COMPOSE)
    chosen = next(n for n in reference.nodes if n.stage == 1 and n.number in reference.chosen)
    url = f"sqlite:///{tmp_path / 'killed.db'}"
    # stage 1 trains 4 trials; kill the stage-2 trial the reference chose, so that it comes back under
    # another number and stage 3 is drawn from it
    _killed(where, 4 + chosen.position[-1] + 1, [*COMPOSE_ARGS, "--storage", url], tmp_path)
    rerun = _in_time(lambda: compose("digits-mlp", storage=url, heartbeat_interval=1, grace_period=2, **COMPOSE))
    assert rerun.spec == reference.spec
    assert [n.position for n in rerun.nodes if n.number in rerun.chosen] == \
        [n.position for n in reference.nodes if n.number in reference.chosen]
    assert _tree(rerun) == _tree(reference)  # one node per stage trial: 12, none twice
    study = load_study(open_storage(url), None)[0]
    killed = study.get_trials(states=(TrialState.FAIL,))
    assert len(killed) == 1 and killed[0].number not in {n.number for n in rerun.nodes}
    assert (ATTR_RESULT in killed[0].user_attrs) == (where == "before-complete")


# ---- 9. a sampler that only repeats itself ---------------------------------------------------------------
def _keys(monkeypatch: pytest.MonkeyPatch, repeat: int) -> None:
    """Every ``repeat`` sampled candidates in a row share one training (the default keeps its own)."""
    calls = itertools.count()
    monkeypatch.setattr(queue_module, "curve_key", lambda method, budget: "default" if method.spec ==
                        "FIX(k0=0.01)" else f"k{next(calls) // repeat}")


def _search(tmp_path: Path, n_trials: int, log: list[str]):  # noqa: ANN202
    rec = recommend("digits-mlp", target=0.9, budget=200, n_trials=n_trials, storage=f"sqlite:///{tmp_path / 'd.db'}",
                    lr_range=(0.01, 0.5), runner=FakeRunner(), optimizer="sgd", baselines=(), lookup=False,
                    families=("fixed",), log=log.append, repeats=0)  # one seed: the keys above count every call
    study = load_study(open_storage(f"sqlite:///{tmp_path / 'd.db'}"), None)[0]
    return rec, study


def test_a_search_stops_after_too_many_duplicates_in_a_row(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _keys(monkeypatch, repeat=10**9)  # one training only
    log: list[str] = []
    rec, study = _search(tmp_path, 100, log)
    candidates = [t for t in study.get_trials() if t.user_attrs.get("lrkit_role") == "candidate"]
    assert len(candidates) == study_run.MAX_DUPLICATES_IN_A_ROW + 1  # the first, then 20 duplicates of it
    assert counted(study) == 1 and rec.best is not None
    assert any(f"stopped sampling: the last {study_run.MAX_DUPLICATES_IN_A_ROW} sampled candidates repeated "
               "trainings already run" in line and "(1 of 100 candidates found)" in line for line in log), log


def test_a_search_stops_after_too_many_duplicates_in_all(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _keys(monkeypatch, repeat=3)  # one new training, two duplicates of it, the next ...
    monkeypatch.setattr(study_run, "MAX_DUPLICATES", 6)
    log: list[str] = []
    _, study = _search(tmp_path, 5, log)
    duplicates = [t for t in study.get_trials() if t.user_attrs.get("lrkit_duplicate_of") is not None]
    assert len(duplicates) == 6 and counted(study) == 3
    assert any("stopped sampling: 6 sampled candidates (the limit: 6) repeated" in line for line in log), log
