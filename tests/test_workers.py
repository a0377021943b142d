"""Several workers on one study, a worker killed mid-trial, and an interrupted recommendation.

Workers are real ``lrkit worker`` processes on SQLite and on a throwaway PostgreSQL server. The study is
created once (``recommend(..., create_only=True)``) before any worker starts. ``slow_task`` is digits-mlp
with a model that sleeps a little in every forward pass, so that a trial lasts long enough to be killed
in the middle; workers import it as ``test_workers:slow_task``.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

from optuna.trial import TrialState
from pgserver import pg_server, storage_url  # noqa: F401  (fixtures)

from lrkit.lrbench.search.recommend import recommend
from lrkit.lrbench.study.queue import counted
from lrkit.lrbench.study.schema import ATTR_RESULT, ATTR_SURPLUS
from lrkit.lrbench.study.storage import load_study, open_storage

TESTS = Path(__file__).parent
TIMING = ["--heartbeat-interval", "1", "--grace-period", "2"]


def slow_task():  # noqa: ANN201
    """digits-mlp whose forward pass sleeps 4 ms: a 200-update trial takes about a second."""
    import torch

    from lrkit.lrbench.tasks.catalogue import get_task

    base = get_task("digits-mlp")

    class Slow(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.inner = base.make_model()

        def forward(self, x):  # noqa: ANN001, ANN201
            time.sleep(0.004)
            return self.inner(x)

    return base.replace(name="digits-mlp-slow", make_model=Slow, eval_every=50)


def _create(url: str, name: str, n_trials: int, task: str = "test_workers:slow_task", budget: int = 200):
    return recommend(task, target=0.97, budget=budget, n_trials=n_trials, storage=url, study_name=name,
                     lr_range=(0.02, 0.5), families=("fixed", "cosine", "clr", "step"), create_only=True,
                     heartbeat_interval=1, grace_period=2, optimizer="sgd", baselines=())


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(TESTS), env.get("PYTHONPATH", "")])
    return env


def _worker(url: str, name: str, tmp: Path) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "lrkit.cli.main", "worker", "--study", name, "--storage", url, "--no-progress",
           *TIMING]
    return subprocess.Popen(cmd, cwd=tmp, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _study(url: str, name: str):  # noqa: ANN202
    return load_study(open_storage(url, heartbeat_interval=1, grace_period=2), name)[0]


def _ran(out: str) -> int:
    match = re.search(r"worker ran (\d+) trials", out)
    assert match, out
    return int(match.group(1))


def test_two_workers_share_one_study_and_never_run_one_trial_twice(storage_url: str, tmp_path: Path) -> None:
    # queued trials (the default and three baselines) and sampled candidates, two workers started at the
    # same moment: on SQLite this ran the first queued trial in both workers until transactions began
    # IMMEDIATE (the claim itself is also tested alone, on both backends, in test_storage.py)
    recommend("test_workers:slow_task", target=0.97, budget=100, n_trials=3, storage=storage_url, study_name="shared",
              lr_range=(0.02, 0.5), families=("fixed", "cosine", "clr", "step"), create_only=True,
              heartbeat_interval=1, grace_period=2, optimizer="sgd", baselines=("adam", "prodigy", "dadapt-adam"))
    cmd = [sys.executable, "-m", "lrkit.cli.main", "worker", "--study", "shared", "--storage", storage_url, *TIMING]
    workers = [subprocess.Popen(cmd, cwd=tmp_path, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True) for _ in range(2)]
    outs = [w.communicate(timeout=180) for w in workers]
    assert all(w.returncode == 0 for w in workers), [err[-500:] for _, err in outs]
    started = [set(re.findall(r"trial (\d+) \(.*\) started", err)) for _, err in outs]
    assert started[0] and started[1] and not started[0] & started[1], started  # both took part, none twice
    study = _study(storage_url, "shared")
    # two workers that both sampled the last candidate at the same moment: the higher-numbered one is surplus,
    # pruned before it trained anything and not counted
    extra = [t for t in study.get_trials() if t.user_attrs.get(ATTR_SURPLUS)]
    assert all(t.state == TrialState.PRUNED and ATTR_RESULT not in t.user_attrs for t in extra), extra
    trials = [t for t in study.get_trials() if not t.user_attrs.get(ATTR_SURPLUS)]
    assert counted(study) == 3, counted(study)  # 3 candidates: a worker counts the other's running trial too
    assert all(t.state in (TrialState.COMPLETE, TrialState.PRUNED) for t in trials), [t.state for t in trials]
    assert all(ATTR_RESULT in t.user_attrs for t in trials)
    ran = [_ran(out) for out, _ in outs]
    assert sum(ran) == len(trials) == len(started[0] | started[1]), (ran, len(trials))  # each recorded once
    assert sum(t.user_attrs.get("lrkit_role") == "default" for t in trials) == 1


def test_a_killed_workers_trial_is_failed_and_retried(storage_url: str, tmp_path: Path) -> None:
    _create(storage_url, "killed", n_trials=1)
    victim = _worker(storage_url, "killed", tmp_path)
    deadline, running = time.monotonic() + 90, None
    while time.monotonic() < deadline and running is None:
        time.sleep(0.3)
        running = next((t for t in _study(storage_url, "killed").get_trials(states=(TrialState.RUNNING,))
                        if t.intermediate_values), None)
    assert running is not None, "no trial got under way"
    victim.send_signal(signal.SIGKILL)
    victim.communicate(timeout=30)
    # the trial it was in when it died (the polled one, unless that one had just finished)
    running = _study(storage_url, "killed").get_trials(states=(TrialState.RUNNING,))
    assert len(running) == 1
    running = running[0]
    # started at once: the rescuer finds the dead trial still RUNNING, waits for its heartbeat to go
    # stale (the 2 s grace period), then retries it, rather than exiting with the trial left behind
    rescuer = _worker(storage_url, "killed", tmp_path)
    out, err = rescuer.communicate(timeout=180)
    assert rescuer.returncode == 0, err
    study = _study(storage_url, "killed")
    by_number = {t.number: t for t in study.get_trials()}
    assert by_number[running.number].state == TrialState.FAIL
    retries = [t for t in by_number.values() if t.system_attrs.get("failed_trial") == running.number]
    assert len(retries) == 1 and retries[0].state in (TrialState.COMPLETE, TrialState.PRUNED)
    assert retries[0].params == running.params
    assert retries[0].user_attrs.get("lrkit_role") == running.user_attrs.get("lrkit_role")
    assert counted(study) >= 1 and not study.get_trials(states=(TrialState.RUNNING, TrialState.WAITING))


def test_terminated_recommend_keeps_its_trials_and_the_same_command_continues(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'lrkit.db'}"
    cmd = [sys.executable, "-m", "lrkit.cli.main", "recommend", "--task", "test_workers:slow_task", "--target",
           "0.97", "--budget", "200", "--trials", "3", "--storage", url, "--lr-range", "0.02:0.5",
           "--families", "fixed,cosine", "--no-progress", "--optimizer", "sgd", "--baselines", "none"]
    proc = subprocess.Popen(cmd, cwd=tmp_path, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline, done = time.monotonic() + 90, []
    while time.monotonic() < deadline and not done:
        time.sleep(0.3)
        try:
            study = load_study(open_storage(url), None)[0]
        except Exception:  # not created yet
            continue
        done = study.get_trials(states=(TrialState.COMPLETE, TrialState.PRUNED))
        busy = study.get_trials(states=(TrialState.RUNNING,))
        if done and not busy:
            done = []  # wait until the next trial is under way, to interrupt it mid-trial
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, (out, err)
    assert "Traceback" not in err and err.rstrip().endswith("interrupted"), err  # one line per interrupted trial
    assert "failed with value None" not in err, err
    study = load_study(open_storage(url), None)[0]
    assert not study.get_trials(states=(TrialState.RUNNING,))  # the interrupted trial is closed, not left running
    kept = {t.number for t in study.get_trials(states=(TrialState.COMPLETE, TrialState.PRUNED))}
    assert kept
    again = subprocess.run(cmd, cwd=tmp_path, env=_env(), capture_output=True, text=True, timeout=180)
    assert again.returncode == 0, again.stderr
    assert "continuing study" in again.stderr and "recommended:" in again.stdout
    study = load_study(open_storage(url), None)[0]
    assert counted(study) == 3
    assert kept <= {t.number for t in study.get_trials(states=(TrialState.COMPLETE, TrialState.PRUNED))}
