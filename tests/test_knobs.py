"""The schedule-free and LR-free optimizers' own knobs, drawn beside the policy (lrkit.lrbench.search.space, its knobs)."""

from __future__ import annotations

import optuna
import pytest
from fakes import FakeRunner

import lrkit.lrbench.study.storage as st
from lrkit.lrbench.report.formats import format_methods
from lrkit.lrbench.search.recommend import recommend
from lrkit.lrbench.search.space import (
    default_params,
    knobs_of,
    param_name,
    suggest_knobs,
)
from lrkit.lrbench.study.config import StudyConfig
from lrkit.lrbench.study.schema import ATTR_PORTFOLIO

SF, PRODIGY = "schedulefree:AdamWScheduleFree", "prodigyopt:Prodigy"


def _draw(optimizer: str, params: dict, kwargs: dict | None = None, user: dict | None = None) -> dict:
    return suggest_knobs(optuna.trial.FixedTrial(params), optimizer, dict(kwargs or {}), dict(user or {}), 1000)


def test_a_draw_sets_the_optimizers_own_arguments_and_none_leaves_them_as_they_were() -> None:
    wd, warm = param_name(SF, knobs_of(SF)[0]), param_name(SF, knobs_of(SF)[1])
    assert (wd, warm) == ("AdamWScheduleFree.weight_decay", "AdamWScheduleFree.warmup_steps")
    assert _draw(SF, {wd: 0.01, warm: 0.05}) == {"weight_decay": 0.01, "warmup_steps": 50}  # 5 % of 1000 updates
    assert _draw(SF, {wd: None, warm: None}) == {}
    # a task's argument that carries over is "as otherwise"; drawing its own value changes nothing
    assert _draw(SF, {wd: None, warm: None}, {"weight_decay": 5e-4}) == {"weight_decay": 5e-4}
    assert _draw(SF, {wd: 0.1, warm: None}, {"weight_decay": 5e-4}) == {"weight_decay": 0.1}
    assert _draw(PRODIGY, {"Prodigy.weight_decay": None, "Prodigy.safeguard_warmup": True}) == {"safeguard_warmup": True}


def test_only_schedule_free_and_lr_free_optimizers_have_knobs_and_the_users_arguments_are_never_drawn() -> None:
    assert knobs_of("adam") == () and knobs_of("momentum") == () and default_params("adam") == {}
    assert [k.arg for k in knobs_of(SF, {"weight_decay": 0.1})] == ["warmup_steps"]
    # the user's value stays, even when the trial would have drawn another
    assert _draw(SF, {"AdamWScheduleFree.warmup_steps": None}, {"weight_decay": 0.1}, {"weight_decay": 0.1}) \
        == {"weight_decay": 0.1}
    assert default_params(PRODIGY) == {"Prodigy.weight_decay": None, "Prodigy.safeguard_warmup": None}


def _recommend(path, runner, **kw):
    args = dict(target=0.9, budget=1000, n_trials=12, storage=f"sqlite:///{path}", lr_range=(0.001, 0.01),
                runner=runner, seed=0, optimizers=("adam", PRODIGY, SF), baselines=(), repeats=0,
                families=("fixed", "wsd"), pruner="none")
    args.update(kw)
    return recommend("digits-mlp", **args)


def test_a_search_draws_knobs_for_its_sampled_candidates_but_queues_the_portfolio_as_it_is(tmp_path) -> None:
    runner = FakeRunner(speed={SF: 2.0, PRODIGY: 1.5})
    rec = _recommend(tmp_path / "s.db", runner)
    study = st.load_study(st.open_storage(f"sqlite:///{tmp_path / 's.db'}"), None)[0]
    trials = [t for t in study.get_trials() if t.user_attrs.get("lrkit_role") == "candidate"]
    portfolio = [t for t in trials if t.user_attrs.get(ATTR_PORTFOLIO)]
    assert portfolio and all(t.user_attrs["lrkit_optimizer_kwargs"] == {} for t in portfolio)
    sampled = [t for t in trials if not t.user_attrs.get(ATTR_PORTFOLIO)
               and t.user_attrs["lrkit_optimizer"] in (SF, PRODIGY)]
    assert sampled, "the sampler drew no schedule-free or LR-free candidate"
    for t in sampled:  # every knob drawn is in the trial's parameters, and a value other than None is trained with
        knobs = {k: v for k, v in t.params.items() if k.split(".")[0] in ("AdamWScheduleFree", "Prodigy")}
        assert set(knobs) == set(default_params(t.user_attrs["lrkit_optimizer"]))
        trained = t.user_attrs["lrkit_optimizer_kwargs"]
        assert {k.split(".")[1] for k, v in knobs.items() if v is not None} == set(trained)
    assert any(t.user_attrs["lrkit_optimizer_kwargs"] for t in sampled), "no draw changed an argument"
    # the ranking names what the knobs drew, so two candidates of one policy never read the same
    knobbed = [m for m in rec.ranked if m.first.knobs]
    assert knobbed and all(m.label.startswith(f"{m.optimizer} (candidate; ") for m in knobbed)
    for m in knobbed:
        assert all(f"{k}={v}" in m.label for k, v in m.optimizer_kwargs.items())
        assert m.label in format_methods(rec.ranked, spec_width=30)
    seen = [s["kwargs"] for s in runner.seen if s["optimizer"] in (SF, PRODIGY)]
    assert any(seen), "the runner never trained with a drawn argument"


def test_no_knobs_draws_none_and_a_study_stored_before_knobs_keeps_its_space(tmp_path) -> None:
    runner = FakeRunner(speed={SF: 2.0, PRODIGY: 1.5})
    rec = _recommend(tmp_path / "off.db", runner, knobs=False)
    assert rec.config.knobs is False
    assert all(s["kwargs"] == {} for s in runner.seen if s["optimizer"] in (SF, PRODIGY))
    study = st.load_study(st.open_storage(f"sqlite:///{tmp_path / 'off.db'}"), None)[0]
    assert not [k for t in study.get_trials() for k in t.params if "." in k and k[0].isupper()]
    old = StudyConfig(task="digits-mlp", target=0.9, budget=100).to_dict()
    del old["knobs"]
    assert StudyConfig.from_dict(old).knobs is False
    assert StudyConfig(task="digits-mlp", target=0.9, budget=100).knobs is True


def test_a_drawn_knob_is_in_the_command_that_reruns_the_candidate(tmp_path) -> None:
    from lrkit.lrbench.study.rerun import rerun_command

    rec = _recommend(tmp_path / "s.db", FakeRunner(speed={SF: 2.0, PRODIGY: 1.5}))
    knobbed = [m for m in rec.ranked if m.optimizer in (SF, PRODIGY) and m.optimizer_kwargs]
    assert knobbed
    for m in knobbed:
        command = rerun_command(rec.config, m)
        for key, value in m.optimizer_kwargs.items():
            assert f"{key}={str(value).lower() if isinstance(value, bool) else value}" in command


@pytest.mark.parametrize("optimizer", [SF, PRODIGY, "dadaptation:DAdaptAdam"])
def test_every_knob_is_an_argument_its_optimizer_takes_with_values_it_accepts(optimizer) -> None:
    import torch

    from lrkit.lrbench.tasks.optimizers import make_optimizer

    for knob in knobs_of(optimizer):
        for choice in knob.choices:
            value = max(1, round(choice * 1000)) if knob.per_budget else choice
            opt = make_optimizer(optimizer, [torch.zeros(2, requires_grad=True)], lr=1.0, **{knob.arg: value})
            assert opt.param_groups[0][knob.arg] == value


def test_a_draw_carried_over_from_a_study_without_knobs_keeps_them_as_otherwise_built(tmp_path) -> None:
    # the other task's study was made without knobs, so its best draw has no knob parameters: carried over,
    # it must train as it was found, not with knobs the sampler drew at random
    url = f"sqlite:///{tmp_path / 's.db'}"
    common = dict(target=0.9, budget=1000, n_trials=4, storage=url, seed=0, optimizer=SF, baselines=(), repeats=0,
                  portfolio=False, families=("fixed", "wsd"))
    recommend("digits-mlp", lr_range=(0.005, 0.2), study_name="a", runner=FakeRunner(), knobs=False, **common)
    from lrkit.lrbench.tasks.catalogue import get_task

    other = get_task("digits-mlp").replace(name="digits-other")
    rec = recommend(other, lr_range=(0.01, 0.4), study_name="b", runner=FakeRunner(), **common)
    moved = [m for m in rec.ranked if m.lookup is not None]
    assert len(moved) == 1 and moved[0].optimizer_kwargs == {} and moved[0].first.knobs is None
    study = st.load_study(st.open_storage(url), "b")[0]
    carried = next(t for t in study.get_trials() if t.user_attrs.get("lrkit_lookup"))
    assert {k: v for k, v in carried.params.items() if k.startswith("AdamWScheduleFree.")} == default_params(SF)
