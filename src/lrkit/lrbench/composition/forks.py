"""Where a composition's fork states live: one file per stage trial, beside the study, removed when done.

A stage trial of ``compose`` ends by saving its :class:`~lrkit.lrbench.run.state.RunState` (model,
optimizer state, RNG, step, curve) to ``DIR/trial-N.pt``; the next stage's candidates start from
their parent's file, so any ``lrkit worker`` that sees the folder can run them. ``DIR`` is, for an
SQLite study ``sqlite:///path/x.db``, ``path/x.db.states/STUDY``; for another storage, the folder
given (``state_dir``), else ``./lrkit-states/STUDY`` (workers on other machines need it on a shared
file system). A file is removed once no candidate can start from it any more, and the folder at the
end. A missing parent state is recomputed by replaying the parent's policy from scratch (bit for bit
on CPU), so deleting the folder loses no finished stage.
"""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

from lrkit.lrbench.study.storage import sqlite_file, storage_url


def state_dir(storage: str | None, study: str, given: str | os.PathLike[str] | None = None) -> Path:
    """The folder of a study's fork states (see the module docstring); created on first use by :func:`state_file`."""
    safe = re.sub(r"[^A-Za-z0-9_.+-]", "_", study)
    if given:
        return Path(given) / safe
    path = sqlite_file(storage_url(storage))
    if path is not None:
        return Path(path + ".states") / safe
    return Path("lrkit-states") / safe


def state_file(folder: Path, trial_number: int) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    return folder / f"trial-{trial_number}.pt"


def remove(paths: list[str | os.PathLike[str]]) -> int:
    """Delete these state files (those that exist); returns the bytes freed."""
    freed = 0
    for path in paths:
        p = Path(path)
        if p.is_file():
            freed += p.stat().st_size
            p.unlink()
    return freed


def remove_folder(folder: Path) -> None:
    if folder.is_dir():
        shutil.rmtree(folder)
        parent = folder.parent
        if parent.name.endswith(".states") and parent.is_dir() and not any(parent.iterdir()):
            parent.rmdir()


def folder_bytes(folder: Path) -> tuple[int, int]:
    """``(files, bytes)`` of the state files in ``folder`` now."""
    files = list(folder.glob("trial-*.pt")) if folder.is_dir() else []
    return len(files), sum(f.stat().st_size for f in files)


__all__ = ["folder_bytes", "remove", "remove_folder", "state_dir", "state_file"]
