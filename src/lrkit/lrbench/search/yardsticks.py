"""The yardsticks of a study: the task's default policy and the baselines (the peers a user would train with
instead), queued on every judging seed beside the search's candidates."""

from __future__ import annotations

from typing import Any

from lrkit.lrbench.run.steps import optimizer_setup
from lrkit.lrbench.search.space import family_of
from lrkit.lrbench.study.baselines import Method, baseline_method
from lrkit.lrbench.study.config import StudyConfig
from lrkit.lrbench.study.queue import alive_keys, queue


def default_method_of(config: StudyConfig, task: Any) -> Method:
    """The task's default: its policy with its optimizer and the task's arguments (none of the user's)."""
    name, kwargs = optimizer_setup(task, config.optimizer, {})
    return Method(name, kwargs, config.default_spec)


def queue_yardsticks(study: Any, config: StudyConfig, task: Any) -> int:
    """Queue the task's default and every baseline on every judging seed (once each); returns how many."""
    have, default = alive_keys(study), default_method_of(config, task)
    queued = 0
    for seed in config.judging_seeds:
        queued += queue(study, config, default, seed, "default", family=family_of(default.spec), have=have)
        for name in config.baselines:
            method = baseline_method(name, config, task)
            queued += queue(study, config, method, seed, "baseline", family=family_of(method.spec), baseline=name,
                            have=have)
    return queued


__all__ = ["default_method_of", "queue_yardsticks"]
