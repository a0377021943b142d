"""Matplotlib helpers shared by ``lrkit plot``, the range test and reports, and the rule for output files.

Matplotlib is imported lazily and only through its object-oriented API with the Agg canvas:
nothing here touches pyplot's global state or switches the backend of a user's notebook.

Every file lrkit writes goes through :func:`output_path` first (no matplotlib needed): a missing
suffix gets the default one, an unknown suffix is refused, the folder must exist (it is never
created), and an existing file is replaced only when overwriting is allowed.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable

import numpy as np

from lrkit.errors import LRKitError, format_values
from lrkit.text import wrap

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from lrkit.policies import Policy

#: beyond this many steps, curves are drawn from this many evenly spread integer steps
MAX_POINTS = 20_000
#: two curves coincide on a plot when they differ by at most this times the largest LR drawn
#: (pointwise relative on a log axis): closer than a pixel, so one would hide the other
COINCIDE_RTOL = 1e-3
#: legend entries are wrapped at this many characters (a spec is never cut short)
LABEL_WIDTH = 88

# how the k-th of several coincident curves is drawn, so that all of them stay visible
_OVERLAP_STYLES = (("-", 3.2, 0.45), ("--", 1.6, 1.0), (":", 2.2, 1.0), ("-.", 1.4, 1.0))


def output_path(path: str | os.PathLike[str], default_suffix: str, allowed_suffixes: Iterable[str] | None,
                overwrite: bool, *, what: str | None = None, param: str = "path") -> Path:
    """The file to write for ``path``, checked against lrkit's rule for output files; writes nothing.

    Args:
        path: where the caller wants to write.
        default_suffix: appended when ``path`` has no suffix (``"lr"`` becomes ``"lr.png"``).
        allowed_suffixes: the suffixes accepted (case-insensitive, with or without the dot), or
            None for any.
        overwrite: whether an existing file may be replaced.
        what: says what the allowed suffixes are, for the message (e.g. "the image formats
            matplotlib can write").
        param: the name the caller knows ``path`` by, for the message (e.g. ``"-o"``).

    Returns:
        ``path`` as a :class:`~pathlib.Path`, with ``default_suffix`` added when it had none.

    Raises:
        LRKitError: the suffix is not allowed, ``path`` names a folder, its folder does not exist
            (it is not created), or the file exists and ``overwrite`` is False.

    Example:
        >>> str(output_path("lr", ".png", [".png", ".svg"], overwrite=False))
        'lr.png'
    """
    def dotted(suffix: str) -> str:
        return suffix if suffix.startswith(".") else "." + suffix

    text = os.fspath(path)
    if not text or text.endswith(("/", os.sep)) or Path(text).is_dir():
        raise LRKitError(f"`{param}` must name a file, not a folder, but got {format_values(**{param: text})}.")
    out = Path(text)
    if not out.suffix:
        out = out.with_name(out.name + dotted(default_suffix))
    if allowed_suffixes is not None:
        allowed = sorted({dotted(s).lower() for s in allowed_suffixes})
        if out.suffix.lower() not in allowed:
            about = f" ({what})" if what else ""
            raise LRKitError(f"`{param}` must end in one of {', '.join(allowed)}{about}, "
                             f"but got {format_values(**{param: text})}.")
    folder = out.parent
    if not folder.is_dir():
        state = "is not a folder" if folder.exists() else "does not exist"
        raise LRKitError(f"the folder {str(folder)!r} {state}, so {str(out)!r} cannot be written "
                         "(lrkit does not create folders); create it or choose another path.")
    if out.exists() and not overwrite:
        raise LRKitError(f"{str(out)!r} already exists and was left as it is; choose another path or allow "
                         "overwriting (--force on the command line, overwrite=True in Python).")
    return out


def image_formats() -> tuple[str, ...]:
    """The suffixes matplotlib can write here (``.png``, ``.svg``, ``.pdf``, ...), sorted."""
    try:
        from matplotlib.backend_bases import FigureCanvasBase
    except ModuleNotFoundError as err:
        raise _no_matplotlib(err) from None
    return tuple(sorted("." + name for name in FigureCanvasBase.get_supported_filetypes()))


def image_path(path: str | os.PathLike[str], overwrite: bool, *, param: str = "path") -> Path:
    """:func:`output_path` for an image: PNG when there is no suffix, any format matplotlib can write."""
    return output_path(path, ".png", image_formats(), overwrite,
                       what="the image formats matplotlib can write", param=param)


def new_figure(width: float = 7.0, height: float = 4.0) -> "Figure":
    """A matplotlib Figure on an Agg canvas (no display needed, no pyplot state)."""
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ModuleNotFoundError as err:
        raise _no_matplotlib(err) from None
    fig = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def save_figure(fig: "Figure", path: str | os.PathLike[str], dpi: int = 120, *, overwrite: bool = True) -> Path:
    """Write ``fig`` to ``path`` under :func:`image_path`'s rule and return the path written.

    The format follows the suffix (PNG when there is none: ``"lr"`` writes ``lr.png``). The folder
    must exist. ``overwrite`` defaults to True, like matplotlib's ``savefig``, so a script or a
    notebook cell can be rerun; pass False to refuse replacing a file (as ``lrkit plot`` does
    without ``--force``).
    """
    out = image_path(path, overwrite)
    fig.savefig(out, dpi=dpi, format=out.suffix[1:].lower())
    return out


def plot_steps(steps: int, max_points: int = MAX_POINTS) -> np.ndarray:
    """The integer steps ``0 .. steps-1`` to draw, thinned evenly to at most ``max_points``."""
    if steps <= max_points:
        return np.arange(steps, dtype=np.float64)
    return np.unique(np.round(np.linspace(0, steps - 1, max_points)))


def coincident_groups(curves: list[np.ndarray], log_y: bool = False) -> list[int]:
    """For each curve, the index of the first curve it coincides with (itself when none).

    Two curves coincide when they differ nowhere by more than :data:`COINCIDE_RTOL` times the
    largest LR drawn (on a log axis: times the larger of the two values at each point), i.e. one
    would hide the other on the plot.

    Example:
        >>> coincident_groups([np.array([1.0, 2.0]), np.array([1.0, 3.0]), np.array([1.0, 2.0000001])])
        [0, 1, 0]
    """
    finite = [c[np.isfinite(c)] for c in curves]
    scale = max((float(np.max(np.abs(c))) for c in finite if c.size), default=0.0)

    def same(a: np.ndarray, b: np.ndarray) -> bool:
        if a.shape != b.shape or not np.array_equal(np.isfinite(a), np.isfinite(b)):
            return False
        both = np.isfinite(a)
        x, y = a[both], b[both]
        limit = COINCIDE_RTOL * (np.maximum(np.abs(x), np.abs(y)) if log_y else scale)
        return bool(np.all(np.abs(x - y) <= limit))

    leaders: list[int] = []
    for i, curve in enumerate(curves):
        leaders.append(next((j for j in range(i) if leaders[j] == j and same(curves[j], curve)), i))
    return leaders


def plot_policies(policies: Iterable["Policy | str | dict[str, Any]"], steps: int, path: str | os.PathLike[str], *,
                  labels: Iterable[str] | None = None, title: str | None = None, log_y: bool = False,
                  overwrite: bool = True, log_y_name: str = "log_y") -> Path:
    """Draw each policy's LR over updates ``0 .. steps-1`` on one axis and save it as an image.

    The legend sits below the axes, so it never covers a curve, and wraps long labels instead of
    cutting them. Curves that coincide (see :func:`coincident_groups`) are drawn in distinct line
    styles, numbered, and the legend says which coincide.

    Args:
        policies: policies, spec strings or policy dicts.
        steps: the number of updates to draw, > 0.
        path: the output file; the suffix picks the format (:func:`image_formats`), none means
            PNG. Its folder must exist.
        labels: legend entries; default each policy's spec.
        title: the figure title.
        log_y: a logarithmic LR axis (values <= 0 are not drawn; a policy with no LR > 0 over
            the steps is refused, as it would draw nothing).
        overwrite: replace an existing file (default True, like matplotlib's ``savefig``; the
            command line passes False unless ``--force`` is given).
        log_y_name: the name the caller knows ``log_y`` by, for the message (e.g. ``"--log-y"``).

    Returns:
        The path written (with the suffix added when ``path`` had none).
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
    out = image_path(path, overwrite)
    ts = plot_steps(steps)
    curves = [policy.values(ts) for policy in chosen]
    if log_y:
        for policy, curve in zip(chosen, curves):
            if not np.any(curve > 0):
                raise LRKitError(f"`{log_y_name}` needs LRs > 0 to draw, but {policy.spec()} is "
                                 f"{float(np.max(curve)):g} or less at every step of 0..{steps - 1}; "
                                 f"draw it without {log_y_name}.")
    leaders = coincident_groups(curves, log_y)
    entries = _legend_entries(names, leaders)
    legend_lines = sum(entry.count("\n") + 1 for entry in entries)
    fig = new_figure(7.0, 3.6 + 0.17 * legend_lines + (0.3 if title else 0.0))
    ax = fig.add_subplot()
    rank = {}  # position of each curve within its group of coincident curves
    for i, (curve, entry) in enumerate(zip(curves, entries)):
        k = rank[leaders[i]] = rank.get(leaders[i], -1) + 1
        group = leaders.count(leaders[i])
        style, width, alpha = _OVERLAP_STYLES[k % len(_OVERLAP_STYLES)] if group > 1 else ("-", 1.2, 1.0)
        ax.plot(ts, curve, label=entry, linestyle=style, linewidth=width, alpha=alpha)
    if log_y:
        ax.set_yscale("log")
    ax.set_xlabel("update t")
    ax.set_ylabel("learning rate")
    ax.grid(True, alpha=0.3)
    fig.legend(loc="outside lower center", fontsize="small", frameon=False)
    if title:
        ax.set_title(title)
    fig.savefig(out, dpi=120, format=out.suffix[1:].lower())
    return out


def _legend_entries(names: list[str], leaders: list[int]) -> list[str]:
    """Wrapped labels; when curves coincide, every entry is numbered and the coincident ones say with which."""
    numbered = len(set(leaders)) < len(leaders)
    entries = []
    for i, name in enumerate(names):
        text = name
        if numbered:
            others = [j + 1 for j, lead in enumerate(leaders) if lead == leaders[i] and j != i]
            text = f"{i + 1}. {name}" + (f"  (coincides with {', '.join(map(str, others))})" if others else "")
        entries.append("\n".join(wrap(text, LABEL_WIDTH, indent="  ")))
    return entries


def _no_matplotlib(err: ModuleNotFoundError) -> Exception:
    from lrkit.extras import missing_extra

    return missing_extra(err, "plotting") or err


__all__ = ["COINCIDE_RTOL", "LABEL_WIDTH", "MAX_POINTS", "coincident_groups", "image_formats", "image_path",
           "new_figure", "output_path", "plot_policies", "plot_steps", "save_figure"]
