"""``lrkit compose``: compose a policy stage by stage (:mod:`lrkit.lrbench.composition.stagewise`).

The command parses, calls :func:`lrkit.lrbench.composition.stagewise.compose`, and prints the tree of stage trials,
the composed spec and the ``lrkit verify`` command that replays it.
"""

from __future__ import annotations

import argparse
import inspect
from typing import Any


def register(subparsers: Any) -> None:
    """Add ``compose``."""
    from lrkit.cli.lrbench_cmds import add_judging_args
    from lrkit.cli.study_cmds import csv_arg

    p = subparsers.add_parser("compose", help="compose a policy stage by stage (LRBench's dynamic tuning)",
                              description=inspect.cleandoc(cmd_compose.__doc__),
                              formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--task", required=True, help="task name (lrkit tasks), module:function returning a Task, or "
                                                 "your training function train(run) (it must pass its model to "
                                                 "run.optimizer(model), so that runs can fork)")
    p.add_argument("--target", type=float, help="target accuracy in (0, 1], or a value of --metric "
                                                "(default: the task's)")
    add_judging_args(p, ranks=False)
    p.add_argument("--budget", type=int, help="updates in all (default: the task's)")
    p.add_argument("--stages", type=int, default=3, help="stages of about equal length (default 3)")
    p.add_argument("--boundaries", metavar="B1,B2,..", help="the stage ends instead (multiples of --eval-every)")
    p.add_argument("--candidates", type=int, default=5,
                   help="stage-1 policies, and next segments per beam state at each boundary (default 5: continue, decay, shrink, switch, plateau)")
    p.add_argument("--beam", type=int, default=2, help="states carried to the next stage (default 2)")
    p.add_argument("--optimizer", help="the optimizer (a name or module:Class; default: the task's)")
    p.add_argument("--opt", action="append", default=[], metavar="KEY=VALUE", help="optimizer argument (repeat)")
    p.add_argument("--families", type=csv_arg, help="families stage 1 and the switches draw from (default: all but ralr)")
    p.add_argument("--lr-range", default="auto", metavar="auto|grid|range-test|LOW:HIGH",
                   help="how to find the optimizer's LR range (default auto)")
    p.add_argument("--eval-every", type=int, help="updates between evaluations (default: the task's)")
    p.add_argument("--seed", type=int, default=0, help="training seed and the draws' seed (default 0)")
    p.add_argument("--storage", metavar="URL", help="SQLAlchemy URL or SQLite file (default: sqlite:///lrkit.db)")
    p.add_argument("--study", metavar="NAME", help="study name")
    p.add_argument("--state-dir", help="where fork states are kept (default: beside an SQLite file)")
    p.add_argument("--keep-states", action="store_true", help="keep the fork states at the end")
    p.add_argument("--no-lookup", action="store_true",
                   help="do not start stage 1 from the best policies other studies of this task found")
    p.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N")
    p.add_argument("--json", action="store_true", help="print the composition as JSON")
    p.add_argument("--no-progress", action="store_true", help="no progress lines or bars")
    p.set_defaults(func=cmd_compose, subparser=p)


def cmd_compose(args: argparse.Namespace) -> int:
    """Compose a policy stage by stage: train a few single policies up to the first boundary, fork the best
    states there (model, optimizer state, batch position), try several next segments each (continue, decay to
    the floor, the same function shrunk 10x, another family around the current LR, a plateau switch), keep the
    best on validation accuracy, and go on until the target is met or the budget is spent. Prints the tree,
    the composed join spec and the `lrkit verify` command that replays it. Every segment tried is a trial of
    the study: the same command continues a killed composition; `lrkit worker`s on the study run stage trials too.

    Example:
      lrkit compose --task digits-mlp --target 0.97 --budget 900 --stages 3 --candidates 4 --beam 2
    """
    from lrkit.cli.lrbench_cmds import judging_args, parse_opt_args
    from lrkit.cli.main import UsageError
    from lrkit.cli.study_cmds import parse_lr_range
    from lrkit.lrbench.composition.stagewise import compose
    from lrkit.lrbench.study.progress import line_logger
    from lrkit.lrbench.study.interrupts import terminate_as_interrupt

    boundaries = None
    if args.boundaries:
        try:
            boundaries = [int(b) for b in args.boundaries.split(",")]
        except ValueError:
            raise UsageError(f"--boundaries takes update counts like 300,600, but got {args.boundaries!r}") from None
    with terminate_as_interrupt():
        comp = compose(args.task, target=args.target, budget=args.budget, stages=args.stages, boundaries=boundaries,
                       candidates=args.candidates, beam=args.beam, optimizer=args.optimizer,
                       optimizer_kwargs=parse_opt_args(args.opt) or None, storage=args.storage, study_name=args.study,
                       families=args.families, lr_range=parse_lr_range(args.lr_range), seed=args.seed,
                       eval_every=args.eval_every, lookup=not args.no_lookup, device=args.device,
                       progress=not args.no_progress, log=line_logger(), state_dir=args.state_dir,
                       keep_states=args.keep_states, **judging_args(args))
    print(comp.format("json" if args.json else "table"))
    return 0 if comp.best is not None else 1
