"""One stage trial of a composition, run by the composing process or by any ``lrkit worker``.

It trains its method from its parent's end state (a :class:`~lrkit.lrbench.run.state.RunState` file, or,
when that file is gone, the parent's policy replayed from scratch, bit for bit on CPU) to the stage's
end, and saves its own end state for the next stage (:mod:`lrkit.lrbench.composition.forks`).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Callable

from lrkit.lrbench.composition import forks
from lrkit.lrbench.search.forking import state_at
from lrkit.lrbench.study.baselines import Method
from lrkit.lrbench.study.config import StudyConfig
from lrkit.lrbench.study.schema import ATTR_COMPOSE_DONE, ATTR_PARENT, ATTR_STATE_FILE, ATTR_UNTIL

#: the study attribute a composition sets when it has queued its last stage (workers stop waiting then)


def run_stage_trial(trial: Any, task: Any, config: StudyConfig, method: Method, seed: int, *, device: str = "cpu",
                    on_eval: Callable[[Any], bool] | None = None) -> Any:
    """Train ``method`` from the parent's end state to the trial's stage end and save its own end state."""
    from lrkit.lrbench.run.runner import run_trial

    parent = trial.user_attrs.get(ATTR_PARENT)
    start = _parent_state(trial.study, config, task, parent, seed, device) if parent is not None else None
    result = run_trial(task, method.spec, budget=int(trial.user_attrs[ATTR_UNTIL]), target=config.target, seed=seed,
                       device=device, optimizer=method.optimizer, optimizer_kwargs=method.optimizer_kwargs,
                       eval_every=config.eval_every, on_eval=on_eval, on=config.on, early_stop=False, start=start,
                       keep_state=True)
    if result.state is not None:
        path = forks.state_file(Path(config.compose["states"]), trial.number)
        result.state.save(path)
        trial.set_user_attr(ATTR_STATE_FILE, str(path))
    return result


def _parent_state(study: Any, config: StudyConfig, task: Any, parent: int, seed: int, device: str) -> Any:
    """The parent's end state: its file, or (when the file is gone) the parent's policy replayed from scratch."""
    attrs = study.get_trials(deepcopy=False)[parent].user_attrs
    return state_at(study, config, task, parent, attrs.get(ATTR_STATE_FILE), int(attrs[ATTR_UNTIL]), seed, device)


def wait_while_composing(study: Any, poll: float = 2.0) -> bool:
    """For a worker: True (after a pause) while the composition is still queueing stages."""
    study_attrs = study.user_attrs
    if study_attrs.get(ATTR_COMPOSE_DONE, True):
        return False
    time.sleep(poll)
    return True



__all__ = ["run_stage_trial", "wait_while_composing"]
