"""Matplotlib helpers shared by ``lrkit plot``, the range test and reports.

Matplotlib is imported lazily and only through its object-oriented API with the Agg canvas:
nothing here touches pyplot's global state or switches the backend of a user's notebook.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable

import numpy as np

from lrkit.errors import LRKitError

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from lrkit.policies import Policy

#: beyond this many steps, curves are drawn from this many evenly spread integer steps
MAX_POINTS = 20_000


def new_figure(width: float = 7.0, height: float = 4.0) -> "Figure":
    """A matplotlib Figure on an Agg canvas (no display needed, no pyplot state)."""
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError as err:  # pragma: no cover - depends on the environment
        raise LRKitError("plotting needs matplotlib: `pip install 'lrkit[plot]'` "
                         f"(import failed: {err}).") from None
    fig = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def save_figure(fig: "Figure", path: str | Path, dpi: int = 120) -> Path:
    """Write ``fig`` to ``path`` (format from the suffix, PNG by default); create parent folders."""
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=dpi)
    return out


def plot_steps(steps: int, max_points: int = MAX_POINTS) -> np.ndarray:
    """The integer steps ``0 .. steps-1`` to draw, thinned evenly to at most ``max_points``."""
    if steps <= max_points:
        return np.arange(steps, dtype=np.float64)
    return np.unique(np.round(np.linspace(0, steps - 1, max_points)))


def plot_policies(policies: Iterable["Policy | str | dict[str, Any]"], steps: int, path: str | Path, *,
                  labels: Iterable[str] | None = None, title: str | None = None, log_y: bool = False) -> Path:
    """Draw each policy's LR over updates ``0 .. steps-1`` on one axis and save it as an image.

    Args:
        policies: policies, spec strings or policy dicts.
        steps: the number of updates to draw, > 0.
        path: the output file (``.png``, ``.svg``, ``.pdf``).
        labels: legend entries; default each policy's spec.
        title: the figure title.
        log_y: a logarithmic LR axis (values <= 0 are not drawn).

    Returns:
        The path written.
    """
    from lrkit.spec import as_policy

    chosen = [as_policy(p) for p in policies]
    if not chosen:
        raise LRKitError("`at least one policy` must be given, but got (policies=[]).")
    if not isinstance(steps, int) or steps <= 0:
        raise LRKitError(f"`steps > 0` (an integer number of updates) must hold, but got (steps={steps!r}).")
    names = list(labels) if labels is not None else [p.spec() for p in chosen]
    if len(names) != len(chosen):
        raise LRKitError(f"`len(labels) == len(policies)` must hold, but got "
                         f"(len(labels)={len(names)}, len(policies)={len(chosen)}).")
    ts = plot_steps(steps)
    fig = new_figure()
    ax = fig.add_subplot()
    for policy, name in zip(chosen, names):
        ax.plot(ts, policy.values(ts), label=_shorten(name), linewidth=1.2)
    if log_y:
        ax.set_yscale("log")
    ax.set_xlabel("update t")
    ax.set_ylabel("learning rate")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize="small", loc="best")
    if title:
        ax.set_title(title)
    return save_figure(fig, path)


def _shorten(label: str, width: int = 90) -> str:
    return label if len(label) <= width else label[: width - 3] + "..."


__all__ = ["MAX_POINTS", "new_figure", "plot_policies", "plot_steps", "save_figure"]
