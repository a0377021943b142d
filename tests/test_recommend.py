"""The recommender: search space, pruner, ranking, resume after an interrupt, and one real search.

Most tests use ``fake_runner``, a stand-in for ``run_trial`` whose accuracy is a closed-form function
of the LR trajectory (``acc(s) = 0.99 (1 - exp(-k sum_{t<s} lr(t)))``), so a search takes milliseconds
and its outcome is known; one test runs the real trainer on digits-mlp.
"""

from __future__ import annotations

import math

import numpy as np
import optuna
import pytest
from optuna.trial import TrialState

from lrkit.lrbench import results as res
from lrkit.lrbench.pruning import TargetPruner
from lrkit.lrbench.recommend import counted, recommend, score
from lrkit.lrbench.search_space import FAMILIES, SearchContext, available_families, suggest_policy
from lrkit.lrbench.trainer import EvalPoint, TrialResult
from lrkit.errors import LRKitError
from lrkit.spec import from_dict, parse

EVAL = 100


class FakeRunner:
    """``run_trial``'s signature and contract (on_eval, stop at target, statuses) on a closed-form model."""

    def __init__(self, k: float = 0.05, interrupt_at: int | None = None) -> None:
        self.k, self.calls, self.interrupt_at, self.updates = k, [], interrupt_at, 0

    def __call__(self, task, spec, *, budget, target, seed, device, optimizer, optimizer_kwargs, on_eval=None,
                 stop_at_target=True, early_stop=True, eval_every=None):
        self.calls.append(spec)
        if self.interrupt_at is not None and len(self.calls) == self.interrupt_at:
            raise KeyboardInterrupt
        lrs = parse(spec).values(np.arange(budget, dtype=float))
        curve, status, reached = [], "budget", None
        for s in range(EVAL, budget + 1, EVAL):
            acc = 0.99 * (1 - math.exp(-self.k * lrs[:s].sum()))
            point = EvalPoint(s, float(lrs[s - 1]), 1 - acc, 1 - acc, acc, s / 1000)
            curve.append(point)
            stop = bool(on_eval(point)) if on_eval else False
            if reached is None and acc >= target:
                reached = s
                if stop_at_target:
                    break
            if stop:
                status = "stopped"
                break
        self.updates += curve[-1].step
        best = max(p.test_acc for p in curve)
        return TrialResult(status="pass" if reached else status, steps_to_target=reached, final_acc=curve[-1].test_acc,
                           best_acc=best, avg_confidence=best, confidence_std=0.1, train_loss=0.1, test_loss=0.1,
                           loss_gap=0.0, steps=curve[-1].step, seconds=0.01, curve=curve, spec=spec, task=task.name,
                           optimizer=optimizer, seed=seed, device=device, versions={}, reason="", target=target,
                           budget=budget)


def _recommend(path, runner, **kw):
    args = dict(target=0.9, budget=1000, n_trials=8, storage=f"sqlite:///{path}", lr_range=(0.005, 0.2),
                runner=runner, seed=0)
    args.update(kw)
    return recommend("digits-mlp", **args)


# ---- search space -----------------------------------------------------------------------------------
def test_every_family_builds_valid_policies_within_the_range() -> None:
    fams = available_families()
    assert set(fams) == set(FAMILIES), "every catalogue family must build in this lrkit"
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=1))
    ctx = SearchContext(budget=1000, low=0.01, high=0.3, best_spec="COS(k0=0.001, k1=0.1, l=500)", epoch_steps=45)
    seen = set()
    for _ in range(150):
        trial = study.ask()
        family, d = suggest_policy(trial, ctx, fams)
        policy = from_dict(d)
        lrs = policy.values(np.arange(1000, dtype=float))
        assert np.all(np.isfinite(lrs)) and np.all(lrs >= 0), policy.spec()
        assert lrs.max() <= ctx.high * 1.001 + 1e-12, policy.spec()
        assert parse(policy.spec()) == policy
        study.tell(trial, 0.0)
        seen.add(family)
    assert seen == set(fams)


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
        available_families(("fixed", "nope"))


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


# ---- ranking ----------------------------------------------------------------------------------------
def _rec(number, steps, acc, spec="FIX(k0=0.1)", role="candidate", state="COMPLETE", gap=0.0):
    return res.TrialRecord(number=number, state=state, role=role, family="fixed", spec=spec,
                           result={"steps_to_target": steps, "best_acc": acc, "loss_gap": gap, "status": "x"})


def test_ranking_order() -> None:
    recs = [_rec(0, None, 0.99, spec="A"), _rec(1, 300, 0.91, spec="B"), _rec(2, 200, 0.90, spec="C"),
            _rec(3, 200, 0.95, spec="D"), _rec(4, 200, 0.95, spec="E", gap=0.5), _rec(5, 100, 0.99, spec="F",
                                                                                      state="PRUNED")]
    ranked = res.rank(recs)
    assert [r.spec for r in ranked] == ["D", "E", "C", "B", "F", "A"]
    assert [r.rank for r in ranked] == [1, 2, 3, 4, 5, 6]


def test_a_spec_that_fails_on_another_seed_drops() -> None:
    fragile = [_rec(0, 100, 0.95, spec="F"), _rec(1, None, 0.10, spec="F", role="repeat")]
    for r, seed in zip(fragile, (0, 1)):
        r.result["seed"] = seed
    steady = [_rec(2, 300, 0.93, spec="S")]
    ranked = res.rank(fragile + steady)
    assert [r.spec for r in ranked] == ["S", "F"]


def test_ranking_uses_the_worst_seed_and_the_spread() -> None:
    steady = [_rec(0, 200, 0.95, spec="S"), _rec(1, 200, 0.95, spec="S", role="repeat")]
    shaky = [_rec(2, 100, 0.95, spec="T"), _rec(3, 300, 0.95, spec="T", role="repeat")]
    even = [_rec(4, 150, 0.95, spec="E"), _rec(5, 200, 0.95, spec="E", role="repeat")]
    for group in (steady, shaky, even):
        for r, seed in zip(group, (0, 1)):
            r.result["seed"] = seed
    ranked = res.rank(steady + shaky + even)
    # worst seeds: S 200, E 200, T 300; S and E tie on updates and accuracy, S has the smaller spread
    assert [r.spec for r in ranked] == ["S", "E", "T"]
    assert ranked[0].spread == 0.0 and ranked[1].spread == pytest.approx(25.0)


def test_speedup_against_the_default() -> None:
    best, default = _rec(1, 200, 0.95), _rec(0, 600, 0.93, role="default")
    assert res.speedup(best, default)[0] == pytest.approx(3.0)
    missed = _rec(0, None, 0.80, role="default")
    missed.result["budget"] = 1000
    ratio, text = res.speedup(best, missed)
    assert ratio == pytest.approx(5.0) and text.startswith(">=")


def test_no_speedup_claimed_for_a_recommendation_that_fails_on_a_seed() -> None:
    fragile = [_rec(0, 100, 0.95, spec="F"), _rec(1, None, 0.10, spec="F", role="repeat")]
    for r, seed in zip(fragile, (0, 1)):
        r.result["seed"] = seed
    ranked = res.rank(fragile + [_rec(2, None, 0.5, role="default")])
    best = res.best_candidate(ranked)
    ratio, text = res.speedup(best, res.default_record(ranked))
    assert ratio is None and "not with every one of its 2 seeds" in text


def test_score_prefers_reaching_the_target() -> None:
    assert score(999, 0.9, 1000) < score(None, 0.99, 1000) < score(None, 0.5, 1000)


# ---- the search ----------------------------------------------------------------------------------------
def test_search_ranks_runs_the_default_once_and_prunes(tmp_path) -> None:
    runner = FakeRunner()
    rec = _recommend(tmp_path / "s.db", runner)
    study_trials = rec.ranked
    assert sum(r.role == "default" for r in study_trials) == 1
    assert runner.calls.count("FIX(k0=0.01)") >= 1 and len(runner.calls) == 9
    assert rec.best is not None and rec.best.reached and rec.best.role == "candidate"
    assert rec.best.get("steps_to_target") == min(r.get("steps_to_target") for r in study_trials if r.reached)
    assert any(r.state == "PRUNED" for r in study_trials)
    # the FIX(k0=0.01) default needs ~11,500 updates here: it misses the 1000-update budget
    assert rec.default.get("steps_to_target") is None and rec.speedup >= 1000 / rec.best.get("steps_to_target")


def test_pruning_spends_fewer_updates_and_keeps_the_winner(tmp_path) -> None:
    pruned, full = FakeRunner(), FakeRunner()
    a = _recommend(tmp_path / "a.db", pruned, pruner="target")
    b = _recommend(tmp_path / "b.db", full, pruner="none")
    assert pruned.updates < full.updates
    assert a.best.get("steps_to_target") <= b.best.get("steps_to_target") * 1.5


def test_interrupt_keeps_finished_trials_and_the_same_call_continues(tmp_path) -> None:
    path = tmp_path / "s.db"
    with pytest.raises(KeyboardInterrupt):
        _recommend(path, FakeRunner(interrupt_at=5))
    import lrkit.lrbench.storage as st

    study, _ = st.load_study(st.open_storage(f"sqlite:///{path}"), None)
    first = {t.number: t.params for t in study.get_trials() if t.state in (TrialState.COMPLETE, TrialState.PRUNED)}
    assert len(first) == 4
    assert [t.state for t in study.get_trials() if t.number == 4] == [TrialState.FAIL]
    runner = FakeRunner()
    rec = _recommend(path, runner)
    study, _ = st.load_study(st.open_storage(f"sqlite:///{path}"), None)
    assert counted(study) == 9 and len(runner.calls) == 5  # only the missing trials ran
    again = {t.number: t.params for t in study.get_trials() if t.number in first}
    assert again == first and rec.best is not None
    # asking for more trials later continues the same study up to the new total
    _recommend(path, FakeRunner(), n_trials=10)
    assert counted(st.load_study(st.open_storage(f"sqlite:///{path}"), None)[0]) == 11


def test_repeats_give_the_spread_and_are_not_ranked_themselves(tmp_path) -> None:
    class SeededRunner(FakeRunner):
        def __call__(self, task, spec, *, seed, **kw):
            self.k = 0.05 / (1 + seed)  # another seed trains slower
            return super().__call__(task, spec, seed=seed, **kw)

    runner = SeededRunner()
    rec = _recommend(tmp_path / "s.db", runner, repeats=2)
    assert len(runner.calls) >= 9 + 3 * 2
    assert all(r.role != "repeat" for r in rec.ranked)
    assert rec.best.extra["seeds"] == 3  # the recommendation ran with every seed
    top3 = [r for r in rec.ranked if r.role == "candidate" and r.state == "COMPLETE"][:3]
    assert all(r.spread is not None and r.spread > 0 for r in top3)
    again = SeededRunner()
    _recommend(tmp_path / "s.db", again, repeats=2)
    assert again.calls == []  # nothing new: the study is complete and its repeats ran


def test_real_search_on_digits_and_the_recommendation_reruns(tmp_path) -> None:
    from lrkit.lrbench.tasks import get_task
    from lrkit.lrbench.trainer import run_trial

    rec = recommend("digits-mlp", target=0.9, budget=300, n_trials=4, storage=f"sqlite:///{tmp_path / 'r.db'}",
                    lr_range=(0.02, 0.8), families=("fixed", "cosine", "clr"))
    assert rec.best is not None and rec.best.reached
    again = run_trial(get_task("digits-mlp"), rec.spec, budget=300, target=0.9, seed=0)
    assert again.steps_to_target == rec.best.get("steps_to_target")
    assert again.curve[0].test_acc == pytest.approx(rec.best.get("curve")[0]["test_acc"])


def test_a_continued_study_does_not_replay_the_first_sessions_candidates(tmp_path) -> None:
    first = FakeRunner()
    _recommend(tmp_path / "s.db", first, n_trials=3)
    later = FakeRunner()
    _recommend(tmp_path / "s.db", later, n_trials=6)
    candidates_before = set(first.calls[1:])  # calls[0] is the default policy
    assert len(later.calls) == 3 and not candidates_before & set(later.calls)


def test_repeats_queue_each_spec_and_seed_once_even_when_two_top_trials_share_a_spec(tmp_path) -> None:
    import lrkit.lrbench.storage as st
    from lrkit.lrbench.recommend import ATTR_SEED, ATTR_SPEC

    path = tmp_path / "s.db"
    _recommend(path, FakeRunner(), n_trials=3)
    study, _ = st.load_study(st.open_storage(f"sqlite:///{path}"), None)
    top = max((t for t in study.get_trials() if t.state == TrialState.COMPLETE and t.number > 0),
              key=lambda t: t.number)
    study.enqueue_trial(top.params)  # a second trial of the same spec and seed
    _recommend(path, FakeRunner(), n_trials=4)
    _recommend(path, FakeRunner(), n_trials=4, repeats=1)
    study, _ = st.load_study(st.open_storage(f"sqlite:///{path}"), None)
    pairs = [(t.user_attrs.get(ATTR_SPEC), t.user_attrs.get(ATTR_SEED)) for t in study.get_trials()
             if t.user_attrs.get("lrkit_role") == "repeat"]
    assert pairs and len(pairs) == len(set(pairs))
