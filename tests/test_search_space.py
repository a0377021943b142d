"""The search space (optimizer, family, parameters within each optimizer's LR range) and the pruner."""

from __future__ import annotations

import numpy as np
import optuna
import pytest
from optuna.trial import TrialState

from lrkit.errors import LRKitError
from lrkit.lrbench.search.pruning import TargetPruner
from lrkit.lrbench.search.space import (FAMILIES, SearchContext, check_families, family_of, suggest_optimizer,
                                        suggest_policy)
from lrkit.spec import from_dict, parse


def test_every_family_builds_valid_policies_within_each_optimizers_range() -> None:
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=1))
    ranges = {"sgd": (0.01, 0.3), "adam": (1e-4, 3e-3)}  # orders of magnitude apart
    seen, chosen = set(), set()
    for _ in range(200):
        trial = study.ask()
        name = suggest_optimizer(trial, tuple(ranges))
        low, high = ranges[name]
        ctx = SearchContext(budget=1000, low=low, high=high, best_spec="COS(k0=0.001, k1=0.1, l=500)", epoch_steps=45)
        family, d = suggest_policy(trial, ctx, tuple(FAMILIES))
        policy = from_dict(d)
        lrs = policy.values(np.arange(1000, dtype=float))
        assert np.all(np.isfinite(lrs)) and np.all(lrs >= 0), policy.spec()
        if family != "ralr":  # RALR amplifies the best policy so far, whatever range it came from
            assert lrs.max() <= high * 1.001 + 1e-12, (name, policy.spec())
            assert lrs.max() >= low * 0.999 * 1e-3, (name, policy.spec())
        assert parse(policy.spec()) == policy
        assert family_of(policy.spec()) == family
        study.tell(trial, 0.0)
        seen.add(family)
        chosen.add(name)
    assert seen == set(FAMILIES) and chosen == set(ranges)


def test_one_optimizer_is_not_a_sampled_parameter() -> None:
    trial = optuna.create_study().ask()
    assert suggest_optimizer(trial, ("adam",)) == "adam" and "optimizer" not in trial.params


def test_the_peak_is_a_position_in_the_range_so_it_transfers_between_optimizers() -> None:
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    trial = study.ask()
    family, d = suggest_policy(trial, SearchContext(budget=100, low=0.01, high=1.0), ("fixed",))
    pos = trial.params["fixed.peak_pos"]
    assert 0 <= pos <= 1 and d["k0"] == pytest.approx(0.01 * 100 ** pos, rel=1e-3)


def test_cyclic_candidates_end_low_at_the_budget() -> None:
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=2))
    ctx = SearchContext(budget=900, low=0.01, high=0.3)
    for _ in range(40):
        trial = study.ask()
        _, d = suggest_policy(trial, ctx, ("clr", "sine", "cosine_cycle"))
        policy = from_dict(d)
        assert policy(900) == pytest.approx(d["k0"], rel=1e-6, abs=1e-9), policy.spec()
        study.tell(trial, 0.0)


def test_unknown_family_is_refused() -> None:
    with pytest.raises(LRKitError, match="unknown policy families"):
        check_families(("fixed", "nope"))
    assert check_families(("cosine", "fixed")) == ("fixed", "cosine")  # catalogue order


# ---- pruner -----------------------------------------------------------------------------------------
def _finished(curve: dict[int, float]):
    return optuna.trial.create_trial(value=1.0, intermediate_values={s: 1 - a for s, a in curve.items()},
                                     state=TrialState.COMPLETE)


def test_rule1_prunes_only_trials_already_slower_than_a_finished_one() -> None:
    pruner = TargetPruner(budget=1000, target=0.9)
    fast = _finished({100: 0.5, 200: 0.8, 300: 0.91})
    assert pruner.dominated(300, [fast]) and pruner.dominated(400, [fast])
    assert not pruner.dominated(250, [fast])
    assert not pruner.dominated(900, [_finished({100: 0.5, 1000: 0.89})])  # nobody reached the target


def test_rule2_is_fair_to_a_late_decaying_policy() -> None:
    pruner = TargetPruner(budget=1000, target=0.99, warmup_fraction=0.3, n_startup_trials=1, margin=0.0)
    # a finished late-decaying trial: 0.6 at half the budget, 0.85 at the end
    late = _finished({250: 0.5, 500: 0.6, 750: 0.62, 1000: 0.85})
    # another trial as good as it at half the budget can still gain its 0.25: not pruned, although a
    # same-step comparison with a constant LR at 0.8 by then would rank it far behind
    assert not pruner.hopeless(500, 0.6, [late, _finished({250: 0.7, 500: 0.8, 1000: 0.8})])
    # one at 0.3 cannot reach 0.85 even with the largest gain seen (0.25): pruned
    assert pruner.hopeless(500, 0.3, [late])
    # nothing happens before the warm-up
    assert not pruner.hopeless(200, 0.0, [late])


def test_pruner_arguments_are_checked() -> None:
    with pytest.raises(LRKitError, match="0 <= warmup_fraction <= 1"):
        TargetPruner(100, 0.9, warmup_fraction=2)


def test_the_search_modules_docstring_examples_hold() -> None:
    import doctest

    from lrkit.lrbench.search import calibration, loop, space

    for module in (space, calibration, loop):  # loop: trials_text, moved there from recommend with the repeats
        result = doctest.testmod(module, optionflags=doctest.NORMALIZE_WHITESPACE)
        assert result.failed == 0 and result.attempted > 0, module.__name__


def _candidate_at(study, curve: dict[int, float], spec: str = "FIX(k0=0.1)", seed: int = 0, live: bool = False,
                  **attrs):
    """A candidate trial of ``study`` that reported ``curve`` (update -> accuracy), left running: as the
    pruner sees it (frozen), or ``live`` (to ask ``should_prune``)."""
    trial = study.ask()
    for key, value in {"lrkit_role": "candidate", "lrkit_seed": seed, "lrkit_spec": spec, **attrs}.items():
        trial.set_user_attr(key, value)
    for step, acc in curve.items():
        trial.report(1 - acc, step)
    return trial if live else next(t for t in study.get_trials() if t.number == trial.number)


def test_rule3_lets_the_top_half_past_the_rung_and_judges_each_candidate_once_there() -> None:
    pruner = TargetPruner(budget=900, target=0.99, rung_fraction=1 / 9, eta=2)  # the rung: update 100
    study = optuna.create_study(pruner=pruner)
    first = _candidate_at(study, {50: 0.5, 100: 0.7})
    assert pruner.rung == 100 and not pruner.halved(100, first, study)  # alone at the rung: the top half
    second = _candidate_at(study, {50: 0.5, 100: 0.6})
    assert pruner.halved(100, second, study)  # below the first: the bottom half of two
    third = _candidate_at(study, {50: 0.5, 100: 0.65, 150: 0.66})
    assert not pruner.halved(100, third, study)  # second of three: ceil(3 / 2) = 2 go on
    assert not pruner.halved(150, second, study)  # judged at its first evaluation past the rung only
    assert not pruner.halved(50, second, study)  # nor before it
    off = TargetPruner(budget=900, target=0.99, rung_fraction=None)
    assert not off.halved(100, second, study)


def test_rule3_waits_for_a_policy_that_has_not_reached_its_peak_and_ignores_repeats_and_other_seeds() -> None:
    pruner = TargetPruner(budget=900, target=0.99, rung_fraction=1 / 9, eta=2)
    study = optuna.create_study(pruner=pruner)
    _candidate_at(study, {100: 0.8})
    warming = _candidate_at(study, {100: 0.3}, spec="onecycle(max_lr=0.1, total_steps=900, pct_start=0.3)")
    assert not pruner.halved(100, warming, study)  # its LR still rises at the rung
    decaying = _candidate_at(study, {100: 0.3}, spec="cosine(max_lr=0.1, total_steps=900)")
    assert pruner.halved(100, decaying, study)  # at its peak from the start: judged
    alone = optuna.create_study(pruner=pruner)
    _candidate_at(alone, {100: 0.9}, lrkit_repeat=True)
    _candidate_at(alone, {100: 0.9}, seed=1)
    _candidate_at(alone, {100: 0.9}, lrkit_role="baseline")
    assert not pruner.halved(100, _candidate_at(alone, {100: 0.3}), alone)  # none of those is a rival here


def test_rule3_is_part_of_the_pruners_decision() -> None:
    study = optuna.create_study(pruner=TargetPruner(budget=900, target=0.99))
    _candidate_at(study, {100: 0.8})
    assert _candidate_at(study, {100: 0.5}, live=True).should_prune()
    assert not _candidate_at(study, {100: 0.85}, live=True).should_prune()
    with pytest.raises(LRKitError, match="eta >= 1"):
        TargetPruner(100, 0.9, eta=0.5)
    with pytest.raises(LRKitError, match="0 < rung_fraction <= 1"):
        TargetPruner(100, 0.9, rung_fraction=0)


def test_rule3_keeps_every_recorded_searchs_pick_and_saves_updates() -> None:
    # the candidates' curves of 16 stored searches of the Fashion tasks, replayed through the pruner with and
    # without its rung (benchmarks/successive_halving.py prints the table)
    import importlib.util
    import json
    from pathlib import Path

    path = Path(__file__).parents[1] / "benchmarks" / "successive_halving.py"
    spec = importlib.util.spec_from_file_location("successive_halving", path)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    from lrkit.lrbench.search.pruning import ETA, RUNG_FRACTION

    table = bench.rows(json.loads(bench.CURVES.read_text()), RUNG_FRACTION, ETA)
    assert len(table) == 16 and all(r["kept"] for r in table)
    assert all(r["with"] <= r["without"] for r in table)
    assert sum(r["with"] for r in table) < 0.8 * sum(r["without"] for r in table)


def _repeat_running(study, spec: str, seed: int):
    """A candidate's repeat on ``seed``, running (as the pruner sees it)."""
    trial = study.ask()
    for key, value in {"lrkit_role": "candidate", "lrkit_repeat": True, "lrkit_seed": seed, "lrkit_spec": spec,
                       "lrkit_optimizer": "adam", "lrkit_optimizer_kwargs": {}}.items():
        trial.set_user_attr(key, value)
    trial.report(0.5, 300)
    return next(t for t in study.get_trials() if t.number == trial.number)


def test_rule4_stops_a_repeat_once_another_method_confirmed_on_its_seeds_is_faster() -> None:
    from fakes import finished_trial

    pruner = TargetPruner(budget=1000, target=0.9)
    study = optuna.create_study(pruner=pruner)
    study.add_trial(finished_trial("candidate", "FIX(k0=0.02)", 0, 200))  # the repeated one: won seed 0
    other = [finished_trial("candidate", "FIX(k0=0.01)", s, 300) for s in (0, 1)]
    study.add_trial(other[0])
    repeat = _repeat_running(study, "FIX(k0=0.02)", 1)
    assert not pruner.beaten(300, repeat, study)  # the other has not run seed 1: it may be slower there
    study.add_trial(other[1])
    assert pruner.beaten(300, repeat, study) and not pruner.beaten(275, repeat, study)
    # only candidates are bars: a faster baseline or default never stops a candidate (their comparison stays exact)
    alone = optuna.create_study(pruner=pruner)
    alone.add_trial(finished_trial("candidate", "FIX(k0=0.02)", 0, 200))
    for s in (0, 1):
        alone.add_trial(finished_trial("default", "FIX(k0=0.005)", s, 250))
        alone.add_trial(finished_trial("baseline", "FIX(k0=0.001)", s, 250, baseline="adam"))
    assert not pruner.beaten(900, _repeat_running(alone, "FIX(k0=0.02)", 1), alone)
