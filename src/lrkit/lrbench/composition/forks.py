"""Where a composition's fork states live: one file per stage trial, beside the study, removed when done.

A stage trial of ``compose`` ends by saving its :class:`~lrkit.lrbench.run.state.RunState` (model,
optimizer state, RNG, step, curve) to ``DIR/trial-N.pt``; the next stage's candidates start from
their parent's file, so any ``lrkit worker`` that sees the folder can run them. ``DIR`` is, for an
SQLite study ``sqlite:///path/x.db``, ``path/x.db.states/STUDY``; for another storage, the folder
given (``state_dir``), else ``./lrkit-states/STUDY`` (workers on other machines need it on a shared
file system): :func:`lrkit.lrbench.study.storage.state_dir`, which a search's decay forks use too. A
file is removed once no candidate can start from it any more, and the folder at the end. A missing parent
state is recomputed by replaying the parent's policy from scratch (bit for bit
on CPU), so deleting the folder loses no finished stage.
"""

from __future__ import annotations

from pathlib import Path

from lrkit.lrbench.run.state import remove, remove_folder
from lrkit.lrbench.study.storage import state_dir


def state_file(folder: Path, trial_number: int) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    return folder / f"trial-{trial_number}.pt"


def folder_bytes(folder: Path) -> tuple[int, int]:
    """``(files, bytes)`` of the state files in ``folder`` now."""
    files = list(folder.glob("trial-*.pt")) if folder.is_dir() else []
    return len(files), sum(f.stat().st_size for f in files)


__all__ = ["folder_bytes", "remove", "remove_folder", "state_dir", "state_file"]
