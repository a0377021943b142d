"""The tree of a composition's stage trials as inline SVG, the chosen path highlighted (for ``lrkit report``).

Each stage trial is a node at the update its stage ends at (x) with an edge from its parent (from the
start for stage 1); its label says the trial, what it added (kind) and its validation accuracy at the
stage's end, or the update at which it reached the target. The chosen path is drawn thick and red.
"""

from __future__ import annotations

from typing import Any

from lrkit.text import escape

ROW, PAD_L, PAD_R, PAD_T = 26, 40, 190, 30


def tree_svg(nodes: list[Any], chosen: list[int], budget: int, *, width: int = 900) -> str:
    """Nodes have ``number, stage, parent, kind, until, val_acc, steps_to_target`` (see lrkit.lrbench.composition.stagewise.StageNode)."""
    if not nodes:
        return '<p class="empty">no stage trial has finished yet.</p>'
    order: dict[int, int] = {}  # node -> row: children below their parent's row, in the order they ran
    stages = sorted({n.stage for n in nodes})
    rows = 0
    for stage in stages:
        here = sorted((n for n in nodes if n.stage == stage),
                      key=lambda n: (order.get(n.parent, -1) if n.parent is not None else -1, n.number))
        for i, n in enumerate(here):
            order[n.number] = i
        rows = max(rows, len(here))
    height = PAD_T + rows * ROW + 20

    def fx(update: float) -> float:
        return PAD_L + update / budget * (width - PAD_L - PAD_R)

    def fy(row: float) -> float:
        return PAD_T + row * ROW + ROW / 2

    by_number = {n.number: n for n in nodes}
    path = set(chosen)
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" role="img" '
           'aria-label="the stages of the composition">',
           f'<text x="{PAD_L}" y="14" class="title">stages: each trial is forked from its parent; the chosen path in red</text>']
    ends = sorted({n.until for n in nodes})
    for b in [0, *ends]:
        out.append(f'<line x1="{fx(b):.1f}" y1="{PAD_T - 6}" x2="{fx(b):.1f}" y2="{height - 14}" class="grid"/>'
                   f'<text x="{fx(b):.1f}" y="{height - 2}" text-anchor="middle">{b}</text>')
    root_y = fy((len([n for n in nodes if n.stage == stages[0]]) - 1) / 2)
    for n in nodes:
        parent = by_number.get(n.parent) if n.parent is not None else None
        x0, y0 = (fx(parent.until), fy(order[parent.number])) if parent else (fx(0), root_y)
        on_path = n.number in path and (parent is None or parent.number in path)
        cls = "chosen" if on_path else "edge"
        out.append(f'<line x1="{x0:.1f}" y1="{y0:.1f}" x2="{fx(n.until):.1f}" y2="{fy(order[n.number]):.1f}" '
                   f'class="{cls}"/>')
    for n in nodes:
        x, y = fx(n.until), fy(order[n.number])
        chosen_node = n.number in path
        reached = f"target at {n.steps_to_target}" if n.steps_to_target is not None else (
            f"acc {n.val_acc:.4f}" if n.val_acc is not None else "-")
        out.append(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="{5 if chosen_node else 3.5}" '
                   f'class="{"node chosen-node" if chosen_node else "node"}"><title>{escape(n.spec)}</title></circle>'
                   f'<text x="{x + 8:.1f}" y="{y + 4:.1f}" class="{"chosen-label" if chosen_node else "label"}">'
                   f'#{n.number} {escape(n.kind)} · {escape(reached)}</text>')
    out.append("</svg>")
    return "\n".join(out)


TREE_CSS = ("svg .edge { stroke: #999; stroke-width: 1; } svg .chosen { stroke: #d62728; stroke-width: 3; } "
            "svg .node { fill: #555; } svg .chosen-node { fill: #d62728; } svg .chosen-label { font-weight: bold; } "
            # the edges to a node's children leave through its label: a white halo keeps the label readable
            "svg .label, svg .chosen-label { paint-order: stroke; stroke: #fff; stroke-width: 4px; "
            "stroke-linejoin: round; }")

__all__ = ["TREE_CSS", "tree_svg"]
