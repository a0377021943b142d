"""A search's decay forks: a WSD candidate's run forks its earlier decays, each trained only from there."""

from __future__ import annotations

import pytest

import lrkit.lrbench.study.storage as st
from lrkit.errors import LRKitError
from lrkit.lrbench.report.formats import format_methods
from lrkit.lrbench.run.runner import run_trial
from lrkit.lrbench.search.forking import fork_points
from lrkit.lrbench.search.recommend import recommend
from lrkit.lrbench.study import ranking as res
from lrkit.lrbench.study.queue import counted
from lrkit.lrbench.tasks.catalogue import get_task
from lrkit.spec import parse

TRUNK = "wsd(max_lr=0.1, warmup_steps=30, stable_steps=480, decay_steps=90, min_lr=0.0)"


def test_fork_points_are_the_trunks_schedule_for_shorter_budgets_earliest_first() -> None:
    points = fork_points(TRUNK, 600, 25)
    # budgets of 0.15, 0.25, 0.35, 0.5 and 0.7 x 600, each decaying its last 15 % (the trunk's 90 / 600),
    # the decay's start rounded to an evaluation (a multiple of 25)
    assert [at for at, _ in points] == [75, 125, 175, 250, 350]
    for (at, spec), end in zip(points, (90, 150, 210, 300, 420)):
        sibling = parse(spec)
        assert sibling.warmup_steps + sibling.stable_steps == at and at + sibling.decay_steps == end
        assert (sibling.max_lr, sibling.min_lr, sibling.decay) == (0.1, 0.0, "linear")
    # only before the trunk's own decay, by at least one evaluation, and after the warm-up
    early = "wsd(max_lr=0.1, warmup_steps=30, stable_steps=170, decay_steps=400)"
    assert [at for at, _ in fork_points(early, 600, 25)] == [50, 75, 100, 150]
    assert fork_points("wsd(max_lr=0.1, warmup_steps=490, stable_steps=20, decay_steps=90)", 600, 25) == []
    assert fork_points("cosine(max_lr=0.1, total_steps=600)", 600, 25) == []


@pytest.fixture(scope="module")
def searched(tmp_path_factory):
    path = tmp_path_factory.mktemp("forks") / "r.db"
    rec = recommend("digits-mlp", target=0.95, budget=300, n_trials=3, storage=f"sqlite:///{path}",
                    lr_range=(0.02, 0.8), families=("wsd",), optimizers=("sgd",), baselines=(), eval_every=25,
                    repeats=0, forks=2, portfolio=False, lookup=False, pruner="none")
    study = st.load_study(st.open_storage(f"sqlite:///{path}"), None)[0]
    return rec, study, path


def test_a_search_with_forks_trains_each_fork_only_from_its_trunks_state(searched) -> None:
    rec, study, path = searched
    recs = res.records(study)
    forks = [r for r in recs if r.fork is not None]
    assert forks, "no trunk forked: the test's search no longer exercises forks"
    by_number = {r.number: r for r in recs}
    for fork in forks:
        trunk = by_number[fork.fork["parent"]]
        at = fork.fork["at"]
        assert (trunk.get("steps_to_target") or 10**9) > at  # forked before the trunk reached the target
        assert at in [p for p, _ in fork_points(trunk.spec, 300, 25)]
        # its curve holds the trunk's evaluations up to the fork point, then its own decay
        curve, head = fork.get("curve"), trunk.get("curve")
        assert curve[: at // 25] == head[: at // 25] and curve[at // 25:] != head[at // 25:]
    parents = [r.fork["parent"] for r in forks]
    assert max(parents.count(p) for p in parents) <= 2  # forks=2: at most two of each trunk
    # forks come on top of the candidates asked for, and cost only the updates they trained
    assert counted(study) == 3 and sum(r.role == "candidate" for r in recs) == 3 + len(forks)
    trained = sum(r.get("steps", 0) - (r.fork["at"] if r.fork else 0) for r in recs if r.role == "candidate")
    assert rec.cost.candidates == trained < sum(r.get("steps", 0) for r in recs if r.role == "candidate")
    # the ranking names each fork's trunk
    table = format_methods(rec.ranked)
    assert all(f"[fork of {r.fork['parent']}]" in table for r in forks)
    # the states were removed when the search ended
    assert not (path.parent / "r.db.states").exists()


def test_a_fork_is_the_training_of_its_policy_from_scratch_bit_for_bit(searched) -> None:
    _, study, _ = searched
    fork = next(r for r in res.records(study) if r.fork is not None)
    again = run_trial(get_task("digits-mlp"), fork.spec, budget=300, target=0.95, seed=0, optimizer="sgd",
                      eval_every=25, on="val", val_offset=fork.get("val_target", 0.95) - 0.95)
    ran = [(p["step"], p["val_acc"], p["test_acc"]) for p in fork.get("curve")]
    assert [(p.step, p.val_acc, p.test_acc) for p in again.curve][: len(ran)] == ran


def test_a_negative_forks_is_refused_before_anything_is_stored(tmp_path) -> None:
    with pytest.raises(LRKitError, match=r"`forks >= 0` must hold, but got \(forks=-1\)"):
        recommend("digits-mlp", storage=f"sqlite:///{tmp_path / 'x.db'}", forks=-1)
    assert not (tmp_path / "x.db").exists()
