"""A trial that outgrows one process: ``Task.ranks > 1`` runs the training function as a data-parallel job.

Every trial here is tests/ddp_train.py's two ranks (gloo on CPU, DistributedDataParallel, a
DistributedSampler), started by ``run_trial`` like any trial. The ranks must take the same LRs (the
policy's, a plateau's switch included), record the same curve and stop at the same update, whether the
trial ends by itself or the caller's ``on_eval`` (the search's pruner) stops it; a rank that dies must fail
the trial within seconds, naming the rank, and leave no process behind, and a study goes on past it.
Starting two Pythons that import torch costs seconds here, so each test runs one trial.
"""

from __future__ import annotations

import json
import os
import time

import pytest

torch = pytest.importorskip("torch")
dist = pytest.importorskip("torch.distributed")

import lrkit
from lrkit.errors import LRKitError
from lrkit.lrbench import Task, get_task, run_trial
from lrkit.lrbench.run.protocol import ProtocolError
from lrkit.lrbench.run.ranks import RankFailed, task_reference

pytestmark = [pytest.mark.skipif(not dist.is_available() or not dist.is_gloo_available() or os.name != "posix",
                                 reason="needs torch.distributed with gloo, on a POSIX system"),
              pytest.mark.timeout(120)]

TASK = "tests/ddp_train.py:train"
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
#: switches to FIX at update 20 (on rank 0's report) and reaches the target at 30, before the budget of 60
PLATEAU = "plateau([TRI(k0=0.05, k1=0.2, l=10), FIX(k0=0.3)], patience=0, monitor=val_acc, threshold=0.5)"


@pytest.fixture
def log(tmp_path, monkeypatch):
    """The folder the ranks write what they saw to (tests/ddp_train.py), with the repository as the
    current directory (the task is a path from there)."""
    monkeypatch.chdir(ROOT)
    monkeypatch.setenv("DDP_TRAIN_LOG", str(tmp_path))
    monkeypatch.delenv("DDP_TRAIN_FAIL", raising=False)
    return tmp_path


def _seen(log):
    return [json.loads((log / f"rank{rank}.json").read_text()) for rank in (0, 1)]


def _ranks_alive() -> list[int]:
    """The processes (of any generation) that run a rank of a trial this process started."""
    mine = f"LRKIT_PARENT_PID={os.getpid()}".encode()
    alive = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/environ", "rb") as f:
                if mine in f.read().split(b"\0"):
                    alive.append(int(pid))
        except OSError:
            pass
    return alive


def test_every_rank_takes_the_policys_lrs_records_the_same_curve_and_stops_at_the_same_update(log):
    # a plateau switches on rank 0's report: every rank's scheduler must switch with it
    result = run_trial(get_task(TASK), PLATEAU, on="val", target=0.75)
    seen = _seen(log)
    realized = lrkit.parse(result.realized_spec)
    assert result.realized_spec.endswith("boundaries=[20])")  # the plateau switched at update 20
    assert result.status == "pass" and result.steps == 30 and "at update 30" in result.reason
    curve = [[p.step, p.val_acc] for p in result.curve]
    for rank in seen:
        assert rank["steps"] == result.steps and rank["stopped"]  # the same stop, at the same update
        assert rank["points"] == curve  # the all-reduced accuracy each rank computed is what rank 0 recorded
        assert rank["lrs"] == [float(realized(t)) for t in range(result.steps)]
    assert result.task == TASK and result.device == "cpu" and not _ranks_alive()


def test_the_callers_on_eval_stops_every_rank_at_the_update_it_answered(log):
    points = []

    def prune(point):
        points.append(point)
        return point.step == 20

    result = run_trial(get_task(TASK), "FIX(k0=0.05)", on="val", on_eval=prune)
    assert [p.step for p in points] == [10, 20]
    assert [(p.step, p.lr, p.train_loss, p.val_acc) for p in points] == [
        (p.step, p.lr, p.train_loss, p.val_acc) for p in result.curve]  # (test_loss is NaN: never reported)
    assert result.status == "stopped" and result.reason == "stopped by on_eval at update 20"
    assert all(rank["steps"] == 20 and rank["stopped"] for rank in _seen(log))


@pytest.mark.parametrize("failure, message", [
    ("1:15:kill", r"rank 1 of the trial's 2 processes was killed by SIGKILL"),
    ("0:15:raise", r"(?s)rank 0 of the trial's 2 processes failed: ValueError: .* on purpose.*ddp_train\.py"),
])
def test_a_rank_that_dies_fails_the_trial_at_once_naming_it_and_leaves_no_process(log, monkeypatch, failure, message):
    monkeypatch.setenv("DDP_TRAIN_FAIL", failure)
    with pytest.raises(RankFailed, match=message) as caught:
        run_trial(get_task(TASK), "FIX(k0=0.05)", on="val")
    assert time.time() - float((log / "failed_at").read_text()) < 5
    assert caught.value.rank == int(failure[0])
    assert not _ranks_alive()


def test_an_interrupt_in_the_caller_ends_every_rank(log):
    def interrupt(point):
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_trial(get_task(TASK), "FIX(k0=0.05)", on="val", on_eval=interrupt)
    assert not _ranks_alive()


def test_what_cannot_run_as_several_processes_is_refused_before_any_starts(log):
    def local(run):  # no other process can import a function defined here
        pass

    with pytest.raises(LRKitError, match=r"not defined at the top level of a module or file"):
        run_trial(Task.from_function(local, budget=10, target=0.5, ranks=2), "FIX(k0=0.1)")
    with pytest.raises(LRKitError, match=r"lrkit cannot fork a multi-process trial yet"):
        run_trial(get_task(TASK), "FIX(k0=0.1)", keep_state=True)
    with pytest.raises(LRKitError, match=r"lrkit cannot fork a multi-process trial yet"):
        run_trial(get_task(TASK), "FIX(k0=0.1)", budget=20, eval_every=10, keep_states_at=(10,))
    # a function at the top level of a file is found without a reference, by its file
    import ddp_train

    assert task_reference(Task.from_function(ddp_train.train, budget=10, target=0.5, ranks=2)) == (
        os.path.join(ROOT, "tests", "ddp_train.py") + ":train")
    assert task_reference(get_task(TASK)) == os.path.join(ROOT, TASK)
    assert issubclass(RankFailed, LRKitError) and not issubclass(ProtocolError, RankFailed)


def test_a_study_stores_a_failed_multi_process_trial_as_fail_and_goes_on(log, monkeypatch, tmp_path):
    from optuna.trial import TrialState

    import lrkit.lrbench.study.storage as st
    from lrkit.lrbench.search.recommend import recommend
    from lrkit.lrbench.study.schema import ATTR_ERROR

    monkeypatch.setenv("DDP_TRAIN_FAIL", "1:15:raise:FIX")  # the default, FIX(k0=0.05), fails; the candidate not
    path = tmp_path / "s.db"
    recommend(TASK, n_trials=1, storage=f"sqlite:///{path}", lr_range=(0.05, 0.3), families=("cosine",),
              optimizer="sgd", baselines=(), repeats=0, lookup=False)
    trials = st.load_study(st.open_storage(f"sqlite:///{path}"), None)[0].get_trials(deepcopy=False)
    failed = [t for t in trials if t.state == TrialState.FAIL]
    assert len(trials) == 2 and len(failed) == 1
    assert failed[0].user_attrs[ATTR_ERROR].startswith("RankFailed: rank 1 of the trial's 2 processes failed: "
                                                       "ValueError")
    assert not _ranks_alive()


def test_the_ddp_example_runs_as_two_processes_and_passes_where_the_default_misses():
    from pathlib import Path

    from lrkit.lrbench import get_task, verify

    task = get_task(str(Path(__file__).resolve().parents[1] / "examples" / "ddp_mlp.py") + ":train")
    assert task.ranks == 2
    good = verify(task, "FIX(k0=0.1)", seeds=(0,))
    default = verify(task, task.default_policy, seeds=(0,), early_stop=False)
    assert good.passed and good.trials[0].steps_to_target is not None
    assert not default.passed and default.trials[0].steps == task.budget
