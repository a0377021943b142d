"""verify(): PASS iff every seed passes; the verdict, median and spread across seeds."""

from __future__ import annotations

import json

import pytest

from lrkit.lrbench.tasks.catalogue import get_task
from lrkit.lrbench.run.result import TrialResult
from lrkit.lrbench.run.verify import VerifyResult, verify
from lrkit.errors import LRKitError


def test_pass_on_every_seed_gives_median_steps_and_spread() -> None:
    result = verify("digits-mlp", "FIX(k0=0.1)", target=0.9, budget=1000, seeds=(0, 1, 2))
    assert result.passed and result.verdict == "PASS"
    steps = sorted(t.steps_to_target for t in result.trials)
    assert result.steps_to_target == steps[1] and result.seeds == [0, 1, 2]
    spread = result.spread()["steps_to_target"]
    assert spread["n"] == 3 and spread["min"] == steps[0] and spread["max"] == steps[2]
    assert "PASS" in result.summary() and "3/3 seeds" in result.reason


def test_fail_says_why() -> None:
    result = verify(get_task("digits-mlp"), "FIX(k0=0.1)", target=0.999, budget=200, early_stop=False)
    assert not result.passed and result.verdict == "FAIL" and result.steps_to_target is None
    assert result.trials[0].status == "budget" and "budget of 200 updates ran out" in result.reason
    diverged = verify("digits-mlp", "FIX(k0=10000)", target=0.9, budget=200)
    assert diverged.trials[0].status == "diverged" and "diverged at update" in diverged.reason


def _trial(seed: int, steps_to_target: int | None) -> TrialResult:
    status = "pass" if steps_to_target else "budget"
    return TrialResult(status, steps_to_target, 0.9, 0.9, 0.8, 0.1, 0.3, 0.4, 0.1, 100, 1.0, [], "FIX(k0=0.1)",
                       "t", "sgd", seed, "cpu", {}, "budget of 100 updates ran out" if not steps_to_target else "ok")


def test_one_failing_seed_fails_the_verdict() -> None:
    result = VerifyResult(all(t.passed for t in (_trial(0, 50), _trial(1, None))), "t", "FIX(k0=0.1)", 0.9, 100,
                          [_trial(0, 50), _trial(1, None)])
    assert result.verdict == "FAIL" and "1/2 seeds failed: seed 1" in result.reason
    assert result.steps_to_target == 50  # the median over the seeds that did reach the target


def test_result_round_trips_through_json() -> None:
    result = verify("digits-mlp", "FIX(k0=0.1)", target=0.8, budget=300, seeds=(3,))
    data = json.loads(json.dumps(result.to_dict(), allow_nan=False))
    assert data["verdict"] == "PASS" and data["seeds"] == [3]
    again = VerifyResult.from_dict(data)
    assert again.to_dict() == result.to_dict()


def test_progress_callback_sees_every_evaluation() -> None:
    seen = []
    result = verify("digits-mlp", "FIX(k0=0.01)", target=0.99, budget=200, seeds=(0, 1), eval_every=100,
                    on_eval=lambda seed, point: seen.append((seed, point.step)) or True)  # truthy must not stop
    assert seen == [(0, 100), (0, 200), (1, 100), (1, 200)]
    assert [t.status for t in result.trials] == ["budget", "budget"]


@pytest.mark.parametrize("seeds", [(), (1, 1), (-1,), 3, "0,1"])  # a bare int or a string is not a list
def test_bad_seeds(seeds) -> None:
    with pytest.raises(LRKitError, match="seeds"):
        verify("digits-mlp", "FIX(k0=0.1)", seeds=seeds)
