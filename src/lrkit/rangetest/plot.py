"""Drawing a range test: loss against LR (log axis for an exponential sweep), accuracy alongside, picks marked.

It takes the curve as plain arrays and the picks as :class:`~lrkit.rangetest.suggest.Pick`, so it
depends on nothing above :mod:`lrkit.rangetest.suggest`; :meth:`RangeTestResult.plot
<lrkit.rangetest.result.RangeTestResult.plot>` passes its fields in.
"""

from __future__ import annotations

import os
from typing import Any, Mapping

import numpy as np

from lrkit.rangetest.suggest import Pick, smooth

_COLOURS = {"accuracy": "tab:green", "valley": "tab:red", "steepest": "tab:purple", "minimum": "tab:brown"}


def plot_curve(lrs: np.ndarray, losses: np.ndarray, smoothed_losses: np.ndarray, *,
               accuracies: np.ndarray | None = None, log_x: bool = True, measured_on: str = "training batches",
               picks: Mapping[str, Pick] | None = None, recommended: str | None = None,
               bounds: tuple[float, float] | None = None, title: str = "LR range test",
               path: str | os.PathLike[str] | None = None, ax: Any = None, overwrite: bool = True) -> Any:
    """Draw a range-test curve into ``ax`` (or a new figure) and save it to ``path`` when given.

    Args:
        lrs, losses, smoothed_losses: the curve (one entry per point; non-finite losses are skipped).
        accuracies: the metric at each point, drawn on a second axis, or None.
        log_x: a logarithmic LR axis (for an exponential sweep).
        measured_on: what the losses were measured on, for the legend.
        picks: every rule's pick; the available ones are marked.
        recommended: the method whose pick is recommended (drawn solid, with its ``bounds`` shaded).
        bounds: ``(base_lr, max_lr)`` of the recommended pick.
        title: the axes title.
        path: the image file (:func:`lrkit.plotting.save_figure`'s rule: the folder must exist,
            no suffix means PNG).
        ax: draw into these axes instead of a new figure.
        overwrite: replace an existing ``path`` (default True).

    Returns:
        The matplotlib figure.
    """
    from lrkit.plotting import image_path, new_figure

    out = image_path(path, overwrite) if path is not None else None
    own = ax is None
    fig = new_figure(7.0, 5.2) if own else ax.figure
    ax = fig.add_subplot() if own else ax
    finite = np.isfinite(losses)
    ax.plot(lrs[finite], losses[finite], color="0.75", lw=0.8, label=f"loss ({measured_on})")
    ax.plot(lrs, smoothed_losses, color="tab:blue", lw=1.0, alpha=0.6, label="EMA (divergence stop)")
    n = int(np.argmax(~finite)) if (~finite).any() else len(losses)
    if n:
        ax.plot(lrs[:n], smooth(losses[:n]), color="tab:blue", lw=2.0, label="centred smoothing (suggestions)")
    if log_x:
        ax.set_xscale("log")
    ax.set_xlabel("learning rate")
    ax.set_ylabel("loss")
    top = np.nanmax(smoothed_losses[np.isfinite(smoothed_losses)], initial=1.0)
    low = np.nanmin(losses[finite], initial=0.0)
    ax.set_ylim(max(0.0, low - 0.05 * (top - low)), top * 1.05)
    for pick in (picks or {}).values():
        if pick.available:
            style = "-" if pick.method == recommended else ":"
            ax.axvline(pick.lr, color=_COLOURS.get(pick.method, "k"), ls=style, lw=1.4,
                       label=f"{pick.method}: {pick.lr:.3g}" + (" (recommended)" if pick.method == recommended else ""))
    if recommended is not None and bounds is not None:
        ax.axvspan(bounds[0], bounds[1], color=_COLOURS.get(recommended, "k"), alpha=0.08, label="base..max")
    if accuracies is not None:
        twin = ax.twinx()
        twin.plot(lrs, accuracies, color="tab:green", lw=0.6, alpha=0.4)
        m = int(np.argmax(~np.isfinite(accuracies))) if (~np.isfinite(accuracies)).any() else len(lrs)
        if m:
            twin.plot(lrs[:m], smooth(accuracies[:m]), color="tab:green", lw=1.5)
        twin.set_ylabel("accuracy", color="tab:green")
    if own:  # below the axes, where it covers no curve
        fig.legend(*ax.get_legend_handles_labels(), loc="outside lower center", ncols=2, fontsize=7, frameon=False)
    else:
        ax.legend(fontsize=7, loc="best")
    ax.set_title(title, fontsize=9)
    if out is not None:
        fig.savefig(out, dpi=120, format=out.suffix[1:].lower())
    return fig
