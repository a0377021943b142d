"""One run: train one model under one (optimizer, policy) and judge it — the runner, its steps, its result and state, the judging rules, one optimizer's LR range, and ``verify``. Never imports Optuna."""

from lrkit.lrbench.run.lr_range import LRRange, find_lr_range, task_range_test
from lrkit.lrbench.run.result import EvalPoint, TrialResult
from lrkit.lrbench.run.runner import run_trial
from lrkit.lrbench.run.verify import VerifyResult

__all__ = ["EvalPoint", "LRRange", "TrialResult", "VerifyResult", "find_lr_range", "run_trial", "task_range_test"]
