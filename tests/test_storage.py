"""The storage contract (lrkit.lrbench.study.storage), one suite run against SQLite and PostgreSQL alike."""

from __future__ import annotations

import time

import optuna
import pytest
from optuna.trial import TrialState
from pgserver import pg_server, storage_url  # noqa: F401  (fixtures)

from lrkit.lrbench.study.config import StudyConfig
from lrkit.lrbench.study.schema import ATTR_RESULT
from lrkit.lrbench.study.storage import (create_study, default_study_name, load_study, open_storage,
                                         storage_url as to_url, study_names)
from lrkit.errors import LRKitError

CONFIG = StudyConfig(task="digits-mlp", target=0.9, budget=300, optimizer="sgd", n_trials=4,
                     lr_range=(0.01, 0.5), lr_range_method="given", default_spec="FIX(k0=0.01)",
                     families=("fixed", "cosine"))


def test_create_then_load_keeps_the_config(storage_url: str) -> None:
    store = open_storage(storage_url)
    study, config = create_study(store, "s1", CONFIG)
    assert config == CONFIG
    loaded, again = load_study(open_storage(storage_url), "s1")
    assert again == CONFIG and loaded.study_name == "s1"
    assert study_names(store) == ["s1"]


def test_creating_again_continues_the_same_study(storage_url: str) -> None:
    store = open_storage(storage_url)
    study, _ = create_study(store, "s1", CONFIG)
    study.add_trial(optuna.create_trial(value=1.0))
    study2, config = create_study(open_storage(storage_url), "s1", CONFIG)
    assert len(study2.get_trials()) == 1 and config == CONFIG


def test_another_search_under_the_same_name_is_refused(storage_url: str) -> None:
    store = open_storage(storage_url)
    create_study(store, "s1", CONFIG)
    other = StudyConfig(**{**CONFIG.__dict__, "target": 0.95})
    with pytest.raises(LRKitError, match=r"target: 0\.9 vs 0\.95"):
        create_study(store, "s1", other)


def test_load_of_a_missing_study_names_those_there_are(storage_url: str) -> None:
    store = open_storage(storage_url)
    create_study(store, "present", CONFIG)
    with pytest.raises(LRKitError, match=r"'absent' does not exist in this storage; studies there: present\. "):
        load_study(store, "absent")
    study, _ = load_study(store, None)  # the only study
    assert study.study_name == "present"


def test_study_without_lrkit_config_is_refused(storage_url: str) -> None:
    store = open_storage(storage_url)
    optuna.create_study(storage=store, study_name="foreign")
    with pytest.raises(LRKitError, match="not made by lrkit"):
        load_study(store, "foreign")


def test_trial_result_round_trips_through_user_attrs(storage_url: str) -> None:
    store = open_storage(storage_url)
    study, _ = create_study(store, "s1", CONFIG)
    result = {"status": "pass", "steps_to_target": 120, "best_acc": 0.93, "loss_gap": None,
              "curve": [{"step": 50, "lr": 0.1, "test_acc": 0.5, "test_loss": None}], "spec": "FIX(k0=0.1)",
              "versions": {"torch": "x"}, "reason": "quotes ' \" and <tags> & unicode ×"}
    trial = study.ask()
    trial.set_user_attr(ATTR_RESULT, result)
    study.tell(trial, 120.0)
    stored = load_study(open_storage(storage_url), "s1")[0].get_trials()[0]
    assert stored.user_attrs[ATTR_RESULT] == result


def test_a_silent_running_trial_is_failed_and_requeued_with_its_parameters(storage_url: str) -> None:
    store = open_storage(storage_url, heartbeat_interval=1, grace_period=2)
    study, _ = create_study(store, "s1", CONFIG)
    trial = study.ask({"family": optuna.distributions.CategoricalDistribution(["fixed", "cosine"])})
    trial.set_user_attr("lrkit_spec", "FIX(k0=0.1)")
    store.record_heartbeat(trial._trial_id)  # then the "worker" dies: no more heartbeats
    time.sleep(3)
    optuna.storages.fail_stale_trials(study)
    trials = study.get_trials()
    assert trials[0].state == TrialState.FAIL
    retry = [t for t in trials if t.state == TrialState.WAITING]
    assert len(retry) == 1
    assert retry[0].params == trials[0].params and retry[0].user_attrs["lrkit_spec"] == "FIX(k0=0.1)"
    assert retry[0].system_attrs["failed_trial"] == trials[0].number


def test_heartbeat_arguments_are_checked() -> None:
    with pytest.raises(LRKitError, match="grace_period > heartbeat_interval"):
        open_storage("sqlite://", heartbeat_interval=5, grace_period=5)


def test_urls_and_names() -> None:
    assert to_url(None) == "sqlite:///lrkit.db"
    assert to_url("runs/x.db") == "sqlite:///runs/x.db"
    assert to_url("postgresql+psycopg://u@h/db") == "postgresql+psycopg://u@h/db"
    assert default_study_name("digits-mlp", 0.95, 600, "sgd") == "digits-mlp-sgd-acc0.95-b600"


def test_unreachable_database_is_a_user_error() -> None:
    with pytest.raises(LRKitError, match=r"cannot open storage postgresql\+psycopg://u:\*\*\*@127.0.0.1:1/x"):
        open_storage("postgresql+psycopg://u:secret@127.0.0.1:1/x")


def test_a_config_stored_by_lrkit_0_1_still_loads() -> None:
    old = {"task": "digits-mlp", "target": 0.9, "budget": 300, "optimizer": "sgd", "optimizer_kwargs": {},
           "n_trials": 4, "seed": 0, "lr_range": [0.01, 0.5], "lr_range_method": "grid", "default_spec": "FIX(k0=0.01)",
           "pruner": "target", "families": ["fixed"], "eval_every": None}
    config = StudyConfig.from_dict(old)
    assert config.searched == ("sgd",) and config.lr_range_of("sgd") == (0.01, 0.5)
    assert config.judging_seeds == (0,) and config.baselines == () and config.on == "test"


def test_a_queued_trial_is_claimed_by_one_worker_only(storage_url: str) -> None:
    # two workers claiming the same WAITING trial at the same moment: exactly one may get it (on SQLite,
    # which has no row locks, this needs transactions that begin IMMEDIATE)
    import threading

    study, _ = create_study(open_storage(storage_url), "claims", CONFIG)
    for i in range(40):
        study.enqueue_trial({}, user_attrs={"i": i})
    ids = [t._trial_id for t in study.get_trials(states=(TrialState.WAITING,))]
    stores = [open_storage(storage_url) for _ in range(2)]
    barrier, wins = threading.Barrier(2), {tid: 0 for tid in ids}
    lock = threading.Lock()

    def claim(store) -> None:  # noqa: ANN001
        for tid in ids:
            barrier.wait()
            if store.set_trial_state_values(tid, TrialState.RUNNING):
                with lock:
                    wins[tid] += 1

    threads = [threading.Thread(target=claim, args=(s,)) for s in stores]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert list(wins.values()) == [1] * len(ids), wins


def test_two_processes_opening_a_new_database_at_once_both_succeed(tmp_path) -> None:
    # the loser of the first-time schema creation used to fail with "table studies already exists"
    import threading

    for i in range(6):
        url, barrier, errors = f"sqlite:///{tmp_path / f'new{i}.db'}", threading.Barrier(3), []

        def opener() -> None:
            barrier.wait()
            try:
                open_storage(url)
            except Exception as err:  # noqa: BLE001 (collected for the assertion)
                errors.append(err)

        threads = [threading.Thread(target=opener) for _ in range(3)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=60)
        assert not errors, errors
