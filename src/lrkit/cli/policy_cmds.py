"""``lrkit policies``, ``show``, ``plot``, ``simulate``: look at a policy before training with it.

Thin by design: each command parses its arguments, calls the public policy API (``lrkit.parse``,
``Policy.values``, :mod:`lrkit.policies.summary`, :func:`lrkit.plotting.plot_policies`) and formats.
Nothing here imports torch.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import textwrap
from typing import Any

import lrkit
from lrkit.cli.main import UsageError
from lrkit.cli.spec_arg import policy_arg
from lrkit.policies import Policy, aliases, lookup, summary
from lrkit.text import table, terminal_width, wrap


def register(subparsers: Any) -> None:
    """Add ``policies``, ``show``, ``plot`` and ``simulate``."""
    p = subparsers.add_parser("policies", help="list the registered policies: parameters, defaults, formula",
                              description=cmd_policies.__doc__)
    p.add_argument("name", nargs="?", help="show one policy's full documentation")
    p.set_defaults(func=cmd_policies, subparser=p)

    p = subparsers.add_parser("show", help="a policy's LR at its notable steps, with min and max",
                              description=cmd_show.__doc__)
    p.add_argument("spec", help='a policy spec, e.g. "TRI(k0=0.001, k1=0.006, l=2000)", or @FILE holding one')
    p.add_argument("--steps", type=int, required=True, help="the training budget in optimizer updates")
    p.set_defaults(func=cmd_show, subparser=p)

    p = subparsers.add_parser("plot", help="draw one or more policies into an image",
                              description=cmd_plot.__doc__)
    p.add_argument("specs", nargs="+", metavar="SPEC",
                   help="policy specs (or @FILE holding one); each becomes one curve")
    p.add_argument("--steps", type=int, required=True, help="the number of optimizer updates to draw")
    p.add_argument("-o", "--output", default="lr.png",
                   help="the image file (default: lr.png); the suffix picks the format, none means .png; "
                        "its folder must exist")
    p.add_argument("--force", action="store_true", help="replace the image file if it exists")
    p.add_argument("--title", help="the figure title")
    p.add_argument("--log-y", action="store_true", help="a logarithmic LR axis")
    p.set_defaults(func=cmd_plot, subparser=p)

    p = subparsers.add_parser("simulate", help="print a policy's LR at every K-th update as CSV or JSON",
                              description=cmd_simulate.__doc__)
    p.add_argument("spec", help="a policy spec, or @FILE holding one")
    p.add_argument("--steps", type=int, required=True, help="the number of optimizer updates")
    p.add_argument("--every", type=int, default=1, metavar="K", help="print every K-th update (default 1)")
    p.add_argument("--format", choices=("csv", "json"), default="csv", help="output format (default csv)")
    p.set_defaults(func=cmd_simulate, subparser=p)


# ---- policies -------------------------------------------------------------------------------
def _signature(cls: type[Policy]) -> str:
    parts = []
    for field in dataclasses.fields(cls):
        if field.default is not dataclasses.MISSING:
            default = field.default
            text = "none" if default is None else ("true" if default is True else "false" if default is False
                                                  else _word(default) if isinstance(default, str) else str(default))
            parts.append(f"{field.name}={text}")
        else:
            parts.append(field.name)
    return ", ".join(parts)


def _word(text: str) -> str:
    return text if text.isidentifier() else repr(text)  # spec syntax: bare words need no quotes


def cmd_policies(args: argparse.Namespace) -> int:
    """List every registered policy with its parameters (defaults after '='), aliases and formula.

    With a NAME, print that policy's full documentation instead.
    """
    if args.name:
        cls = lookup(args.name)
        if cls is None:
            from lrkit.spec import unknown_name_message

            raise UsageError(unknown_name_message(args.name))
        print(f"{cls.name}({_signature(cls)})")
        names = [a for a, n in aliases().items() if n == cls.name]
        if names:
            print(f"aliases: {', '.join(names)}")
        print()
        print(_dedent(cls.__doc__ or ""))
        return 0
    alias_of: dict[str, list[str]] = {}
    for alias, name in aliases().items():
        alias_of.setdefault(name, []).append(alias)
    rows = [("NAME", "PARAMETERS", "FORMULA")]
    for name, cls in sorted(lrkit.policies().items(), key=lambda kv: (kv[0].lower(), kv[0])):
        label = name + (f" (alias: {', '.join(alias_of[name])})" if name in alias_of else "")
        rows.append((label, _signature(cls), cls.formula or "-"))
    width = terminal_width(default=100)
    print(_table(rows, width))
    print()
    print(textwrap.fill(f"{len(rows) - 1} policies. `lrkit policies NAME` shows one in full; "
                        "specs look like NAME(param=value, ...).", width))
    return 0


_MIN_COLUMN = 12  # the narrowest a wrapped column gets, however narrow the terminal


def _table(rows: list[tuple[str, str, str]], width: int) -> str:
    """Three columns within ``width`` characters: the first as wide as its longest entry, the
    other two wrapped (parameters after a comma, formulas at spaces); continuation lines leave the
    first column blank."""
    first = max(len(r[0]) for r in rows)
    room = max(width - first - 4, 2 * _MIN_COLUMN)
    longest = max(len(r[1]) for r in rows)
    fits = longest + max(len(r[2]) for r in rows) <= room
    params = longest if fits else max(min(longest, room * 2 // 5), _MIN_COLUMN)
    formula = max(room - params, _MIN_COLUMN)
    lines = []
    for name, signature, text in rows:
        left, right = wrap(signature, params), wrap(text, formula)
        for i in range(max(len(left), len(right))):
            lines.append((name if i == 0 else "", left[i] if i < len(left) else "", right[i] if i < len(right) else ""))
    return table(None, lines, widths=(first, params))


def _dedent(doc: str) -> str:
    import inspect

    return inspect.cleandoc(doc)


# ---- show -----------------------------------------------------------------------------------
def _check_steps(steps: int, flag: str = "--steps") -> None:
    if steps <= 0:
        raise UsageError(f"`{flag} > 0` must hold, but got ({flag}={steps}).")


def cmd_show(args: argparse.Namespace) -> int:
    """Print a policy's LR at update 0, at each segment boundary, at the quarter points and at the last
    update of the budget, then its minimum and maximum over the budget and where they first occur."""
    _check_steps(args.steps)
    policy = policy_arg(args.spec, "SPEC")
    print(policy.spec())
    rows = summary.notable_steps(policy, args.steps)
    values = policy.values([t for t, _ in rows])
    width = max(len(str(t)) for t, _ in rows)
    print(f"{'step':>{max(width, 4)}}  {'lr':<13}  note")
    for (t, why), lr in zip(rows, values):
        print(f"{t:>{max(width, 4)}}  {lr:<13.6g}  {why}")
    (lo, lo_at), (hi, hi_at), exact = summary.extremes(policy, args.steps)
    over = (f"steps 0..{args.steps - 1}" if exact
            else f"{summary.SAMPLES:,} evenly spaced steps of 0..{args.steps - 1}")
    print(f"min {lo:.6g} at step {lo_at}; max {hi:.6g} at step {hi_at} (over {over})")
    return 0


# ---- plot -----------------------------------------------------------------------------------
def cmd_plot(args: argparse.Namespace) -> int:
    """Draw the LR of one or more policies over updates 0..STEPS-1 into one image; the legend shows each spec."""
    _check_steps(args.steps)
    policies = [policy_arg(s, "SPEC") for s in args.specs]  # parse all first: a bad spec writes no file
    from lrkit.plotting import image_path, plot_policies

    path = image_path(args.output, args.force, param="-o")
    path = plot_policies(policies, args.steps, path, title=args.title, log_y=args.log_y, overwrite=args.force,
                         log_y_name="--log-y")
    print(f"wrote {path}")
    return 0


# ---- simulate -------------------------------------------------------------------------------
def cmd_simulate(args: argparse.Namespace) -> int:
    """Print the LR at updates 0, K, 2K, ... below STEPS as CSV (step,lr) or JSON; values keep full precision."""
    _check_steps(args.steps)
    _check_steps(args.every, "--every")
    policy = policy_arg(args.spec, "SPEC")
    grid = range(0, args.steps, args.every)
    out = sys.stdout
    if args.format == "json":  # written piecewise so that long runs need no memory
        out.write(f'{{"spec": {json.dumps(policy.spec())}, "step": [')
        out.write(", ".join(str(t) for t in grid))
        out.write('], "lr": [')
        out.write(", ".join(", ".join(map(repr, policy.values(ts).tolist())) for ts in summary.step_chunks(grid)))
        out.write("]}\n")
    else:
        out.write("step,lr\n")
        for ts in summary.step_chunks(grid):
            out.writelines(f"{int(t)},{lr!r}\n" for t, lr in zip(ts.tolist(), policy.values(ts).tolist()))
    return 0
