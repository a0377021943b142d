"""Drawing a range test: loss against LR (log axis for an exponential sweep), accuracy alongside, picks marked."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from lrkit.rangetest.suggest import smooth

if TYPE_CHECKING:
    from lrkit.rangetest.result import RangeTestResult

_COLOURS = {"accuracy": "tab:green", "valley": "tab:red", "steepest": "tab:purple", "minimum": "tab:brown"}


def plot_result(result: "RangeTestResult", path: str | None = None, ax: Any = None) -> Any:
    """Draw ``result`` into ``ax`` (or a new figure) and save it to ``path`` when given."""
    from matplotlib.figure import Figure

    fig = ax.figure if ax is not None else Figure(figsize=(7, 4.2), layout="constrained")
    ax = ax if ax is not None else fig.subplots()
    lrs, losses = result.lrs, result.losses
    finite = np.isfinite(losses)
    ax.plot(lrs[finite], losses[finite], color="0.75", lw=0.8, label=f"loss ({result.measured_on})")
    ax.plot(lrs, result.smoothed_losses, color="tab:blue", lw=1.0, alpha=0.6, label="EMA (divergence stop)")
    n = int(np.argmax(~finite)) if (~finite).any() else len(losses)
    if n:
        ax.plot(lrs[:n], smooth(losses[:n]), color="tab:blue", lw=2.0, label="centred smoothing (suggestions)")
    if result.mode == "exp":
        ax.set_xscale("log")
    ax.set_xlabel("learning rate")
    ax.set_ylabel("loss")
    top = np.nanmax(result.smoothed_losses[np.isfinite(result.smoothed_losses)], initial=1.0)
    low = np.nanmin(losses[finite], initial=0.0)
    ax.set_ylim(max(0.0, low - 0.05 * (top - low)), top * 1.05)
    try:
        best = result.suggest()
        chosen = best.method
    except ValueError:
        chosen = None
    for pick in result.picks().values():
        if pick.available:
            style = "-" if pick.method == chosen else ":"
            ax.axvline(pick.lr, color=_COLOURS.get(pick.method, "k"), ls=style, lw=1.4,
                       label=f"{pick.method}: {pick.lr:.3g}" + (" (recommended)" if pick.method == chosen else ""))
    if chosen is not None:
        ax.axvspan(best.base_lr, best.lr, color=_COLOURS.get(chosen, "k"), alpha=0.08, label="base..max")
    if result.accuracies is not None:
        twin = ax.twinx()
        twin.plot(lrs, result.accuracies, color="tab:green", lw=0.6, alpha=0.4)
        m = int(np.argmax(~np.isfinite(result.accuracies))) if (~np.isfinite(result.accuracies)).any() else len(lrs)
        if m:
            twin.plot(lrs[:m], smooth(result.accuracies[:m]), color="tab:green", lw=1.5)
        twin.set_ylabel("accuracy", color="tab:green")
    ax.legend(fontsize=7, loc="upper left")
    ax.set_title(f"LR range test: {result.sweep.spec()}", fontsize=9)
    if path is not None:
        fig.savefig(path, dpi=120)
    return fig
