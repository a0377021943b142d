"""A worker: join an existing recommendation study and run its trials (``lrkit worker``).

Start the study once (``lrkit recommend ... --storage URL --study NAME``, which also finds the LR range),
then start any number of workers on any machines that reach the database::

    lrkit worker --study NAME --storage postgresql+psycopg://user@host/db

Each worker reads the task, target, budget, optimizer, LR range and trial count from the study, runs
trials until the study has them all, and exits. Trials are claimed through the database, so no trial
runs twice; a trial whose worker is killed stops sending heartbeats, is marked FAIL after the grace
period, and is re-queued with the same parameters for the next worker (``RetryHeartbeatStaleTrialCallback``).
Workers never create a study: parallel first-time schema creation on PostgreSQL races.
"""

from __future__ import annotations

from typing import Any

from lrkit.lrbench.study.interrupts import terminate_as_interrupt
from lrkit.lrbench.search.recommend import open_worker_study, summarize
from lrkit.lrbench.composition import stage_trial
from lrkit.lrbench.search.loop import run_study


def run_worker(storage: str | None, study_name: str | None, *, device: str = "cpu", progress: bool = True,
               heartbeat_interval: int | None = None, grace_period: int | None = None) -> dict[str, Any]:
    """Run trials of an existing study until it is complete; returns ``{"ran": n, "study": name, "best": spec}``.

    Args:
        storage: the study's database URL (default ``sqlite:///lrkit.db``).
        study_name: the study (None: the only study in the storage).
        device: where this worker trains (``"cpu"``, ``"cuda"``, ``"cuda:N"``).
        progress: report each trial on stderr (a bar on a terminal, lines otherwise), each line
            starting with ``[worker PID]``. What the trials print themselves (an optimizer's notes, a
            warning) starts with ``[worker PID]`` too, with or without ``progress``.
        heartbeat_interval, grace_period: override the storage's heartbeat timing (seconds).
    """
    import os

    from lrkit.lrbench.study.progress import line_logger, prefixed_output, study_progress
    from lrkit.lrbench.tasks.catalogue import check_task, get_task
    from lrkit.lrbench.run.steps import check_device

    device = check_device(device)
    study, config = open_worker_study(storage, study_name, heartbeat_interval=heartbeat_interval,
                                      grace_period=grace_period)
    task = config.task_of(get_task(config.task))
    check_task(task)
    prefix = f"[worker {os.getpid()}] "
    note = line_logger() if progress else None
    # the reporter takes stderr before prefixed_output wraps it; an optimizer's own prints (Prodigy: "Using
    # decoupled weight decay") carry the worker's prefix too
    with study_progress(config.budget, progress, prefix=prefix) as reporter, terminate_as_interrupt(), \
            prefixed_output(prefix):
        more, stage_runner = None, None
        if config.compose:  # a composition queues its stages one after another: wait for the next
            more = lambda: stage_trial.wait_while_composing(study)  # noqa: E731
            stage_runner = stage_trial.run_stage_trial
        ran = run_study(study, config, task, device=device, progress=reporter,
                        log=(lambda m: note(prefix + m)) if note else None, more_coming=more,
                        stage_runner=stage_runner)
    if config.compose:
        from lrkit.lrbench.composition.stagewise import summarize_composition

        comp = summarize_composition(study, config, task)
        return {"ran": ran, "study": study.study_name, "best": comp.spec, "optimizer": config.optimizer,
                "speedup": "a composition"}
    rec = summarize(study, config, task)
    best = rec.spec if not rec.is_baseline else f"{rec.spec} (the baseline {rec.best.baseline})"
    return {"ran": ran, "study": study.study_name, "best": best, "optimizer": rec.optimizer,
            "speedup": rec.speedup_text}
