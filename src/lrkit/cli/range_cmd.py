"""``lrkit range-test``: the LR range test on a task, printed as bounds and drawn as a curve.

Thin by design: it parses, checks ``--policy`` and the output paths before the sweep (:func:`lrkit.plotting.output_path`),
calls :func:`lrkit.lrbench.run.lr_range.task_range_test` with progress shown on stderr, and formats the
result's suggestions and :meth:`~lrkit.rangetest.RangeTestResult.policy`. torch is imported only
inside the command.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from typing import Any

from lrkit.cli.main import UsageError
from lrkit.errors import LRKitError
from lrkit.text import closest


def register(subparsers: Any) -> None:
    """Add ``range-test``."""
    p = subparsers.add_parser("range-test", help="the LR range test: suggested LR bounds and a policy built from them",
                              description=cmd_range_test.__doc__,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--task", required=True,
                   help="a built-in task (see `lrkit tasks`) or module:function returning a Task or "
                        "(model, optimizer, loss_fn, train_data[, val_data])")
    p.add_argument("--optimizer", help="an optimizer name (sgd, momentum, adam, ...) instead of the task's")
    p.add_argument("--mode", choices=("exp", "linear"), default="exp", help="sweep shape (default exp)")
    p.add_argument("--start-lr", type=float, default=1e-6, help="the sweep's first LR (default 1e-6)")
    p.add_argument("--end-lr", type=float, default=1.0, help="the sweep's last LR (default 1)")
    p.add_argument("--steps", type=int, default=200, help="points (optimizer updates) in the sweep (default 200)")
    p.add_argument("--val", action="store_true",
                   help="measure loss and accuracy on the validation split after every update (slower, steadier)")
    p.add_argument("--train-limit", type=int, metavar="N", help="use only the first N training examples")
    p.add_argument("--batch-size", type=int, help="examples per update (default: the task's)")
    p.add_argument("--accumulation-steps", type=int, default=1, help="micro-batches per update (default 1)")
    p.add_argument("--diverge-factor", type=float, default=4.0,
                   help="stop when the smoothed loss exceeds this times its best (default 4)")
    p.add_argument("--seed", type=int, default=0, help="seeds the model's initialisation (default 0)")
    p.add_argument("--data-dir", help="where the Fashion-MNIST idx files are")
    p.add_argument("--snapshot", choices=("cpu", "disk"), default="cpu",
                   help="where the model/optimizer snapshot is kept during the sweep (default cpu)")
    p.add_argument("--metric", choices=("accuracy", "none"),
                   help="record the accuracy too (the default for a Task), or none: the loss only (the default for "
                        "a module:function set-up of your own)")
    p.add_argument("--method", choices=("accuracy", "valley", "steepest", "minimum"),
                   help="take the bounds from this rule instead of the recommended one")
    p.add_argument("--policy", default="triangular2",
                   help="the policy to build from the bounds: constant, FIX, triangular or triangular2 "
                        "(default triangular2)")
    p.add_argument("--step-size", type=int, metavar="UPDATES",
                   help="the policy's step_size (half cycle) in updates (default: RangeTestResult.policy's, "
                        "4 epochs of the training data, in CLR's 2-10 range)")
    p.add_argument("-o", "--output", default="range.png",
                   help="the plot (default range.png; no suffix means .png; its folder must exist)")
    p.add_argument("--json", metavar="FILE", help="also write the curve and every pick as JSON ('-' for stdout)")
    p.add_argument("--force", action="store_true", help="replace the plot and the JSON file if they exist")
    p.set_defaults(func=cmd_range_test, subparser=p)


def cmd_range_test(args: argparse.Namespace) -> int:
    """Run the LR range test on a task: print each rule's LR bounds, the recommended ones, a policy
    built from them, and draw the curve. Exit 1 when the curve gives no bounds (it carries no signal:
    the loss barely falls and the accuracy barely rises; or no rule can read it): the reason is printed
    and the curve is still drawn.

    Examples:
      lrkit range-test --task fashion-mnist-cnn3 -o range.png
      lrkit range-test --task digits-mlp --optimizer adam --mode linear --end-lr 0.1 --step-size 180
      lrkit range-test --task mypkg.setup:make --steps 100 --json range.json
    """
    _check_args(args)
    from lrkit.lrbench.run.lr_range import task_range_test
    from lrkit.plotting import image_path, output_path

    # refuse a bad or taken output path now, not after the sweep
    plot_to = image_path(args.output, args.force, param="-o")
    json_to = None if args.json in (None, "-") else output_path(args.json, ".json", None, args.force, param="--json")
    kwargs: dict[str, Any] = {}
    if args.batch_size is not None:
        kwargs["batch_size"] = args.batch_size
    if args.metric is not None:
        kwargs["metric"] = None if args.metric == "none" else args.metric
    result = task_range_test(
        args.task, optimizer=args.optimizer, val=args.val, train_limit=args.train_limit, seed=args.seed,
        data_dir=args.data_dir, start_lr=args.start_lr, end_lr=args.end_lr, steps=args.steps, mode=args.mode,
        accumulation_steps=args.accumulation_steps, diverge_factor=args.diverge_factor, snapshot=args.snapshot,
        progress=True, **kwargs)
    # with --json -, stdout carries only the JSON; the summary goes to stderr
    out = sys.stderr if args.json == "-" else sys.stdout
    print(f"{len(result.lrs)}/{result.steps} points, sweep {result.sweep.spec()}, "
          f"measured on {result.measured_on}", file=out)
    print(f"stopped: {result.stop_reason}", file=out)
    found = _print_bounds(result, args, out)
    result.plot(plot_to, overwrite=args.force)
    print(f"plot: {plot_to}", file=out)
    if args.json:
        _write_json(result, json_to, out)
    return 0 if found else 1


def _print_bounds(result: Any, args: argparse.Namespace, out: Any) -> bool:
    """Print the suggested bounds and the ``--policy`` built from them; or, when the curve gives none (no
    signal, no pick), why, with every rule's reading, and return False: the plot and the JSON still show
    the curve."""
    from lrkit.rangetest.result import pick_lines

    try:
        print(result.suggest(args.method), file=out)
    except LRKitError as err:
        print(f"recommended: none: {err}", *pick_lines(result.picks()), "policy: not built (no bounds)", sep="\n",
              file=out)
        return False
    _print_policy(result, args, out)
    return True


def _check_args(args: argparse.Namespace) -> None:
    """Refuse, before any training, numbers out of range and a ``--policy`` the bounds cannot build."""
    if not args.start_lr > 0:  # the optimizer is built at start_lr, and would name it only `lr`
        raise UsageError(f"`--start-lr > 0` must hold, but got (start_lr={args.start_lr:g}).")
    if args.steps < 2:
        raise UsageError(f"`--steps >= 2` must hold, but got (steps={args.steps}).")
    if args.train_limit is not None and args.train_limit < 1:
        raise UsageError(f"`--train-limit >= 1` must hold, but got (train_limit={args.train_limit}).")
    if args.step_size is not None and args.step_size < 1:
        raise UsageError(f"`--step-size >= 1` must hold, but got (step_size={args.step_size}).")
    _check_policy(args.policy, args.step_size)


def _print_policy(result: Any, args: argparse.Namespace, out: Any) -> None:
    """Print the ``--policy`` built from the result's bounds, or why it was not built."""
    from lrkit.rangetest.result import STEP_SIZE_EPOCHS

    given = {} if args.step_size is None else {"step_size": args.step_size}
    if not given and "step_size" in _fields(args.policy) and result.default_step_size() is None:
        print("policy: not built (the training data has no length, so step_size cannot default to "
              f"{STEP_SIZE_EPOCHS} epochs; give --step-size)", file=out)
        return
    try:
        policy = result.policy(args.policy, method=args.method, **given)
        note = ""
        if not given and "step_size" in policy.params():
            per = result.iters_per_epoch
            note = (f"  (step_size = {result.default_step_size()}: {STEP_SIZE_EPOCHS} epochs of "
                    f"{per} update{'s' if per != 1 else ''})")
        print(f"policy: {policy.spec()}{note}", file=out)
    except LRKitError as err:  # bounds read from this curve that break one of the policy's rules
        print(f"policy: not built ({err})", file=out)


def _write_json(result: Any, json_to: Any, out: Any) -> None:
    """The curve and every pick as JSON: to stdout when ``json_to`` is None (``--json -``), else to the file."""
    text = json.dumps(result.to_dict(), indent=1)
    if json_to is None:
        sys.stdout.write(text + "\n")
    else:
        json_to.write_text(text + "\n")
        print(f"json: {json_to}", file=out)


def _fields(name: str) -> list[str]:
    from lrkit.policies.base import lookup

    cls = lookup(name)
    return [] if cls is None else [f.name for f in dataclasses.fields(cls)]


def _check_policy(name: str, step_size: int | None) -> None:
    """Refuse, before any training, a ``--policy`` that the bounds and ``--step-size`` cannot build
    (and a ``--step-size`` that the policy has no use for)."""
    from lrkit.policies.base import lookup, registry
    from lrkit.rangetest.result import bound_fields, policies_from_bounds, still_needed

    accepted = sorted(policies_from_bounds(("step_size",)), key=lambda n: (n.lower(), n))
    cls = lookup(name)
    if cls is None or cls.name not in accepted:
        if cls is not None and not bound_fields(cls):
            why = f"{cls.name} has no LR bound to fill"
        elif cls is not None:
            missing = still_needed(cls, ("step_size",))
            why = (f"{cls.name} also needs {', '.join(missing)} (from Python: "
                   f"result.policy({cls.name!r}, {missing[0]}=...))")
        elif "(" in name:
            why = "give a policy's name, not a spec: the bounds fill its LRs"
        else:
            close = closest(name, accepted) or closest(name, registry())
            why = f"did you mean {close!r}?" if close else "`lrkit policies` lists every policy"
        raise UsageError(f"`--policy` must be one of {', '.join(accepted)} (the policies the suggested bounds "
                         f"and --step-size build), but got (--policy={name!r}); {why}" + "." * (not why.endswith("?")))
    if step_size is not None and "step_size" not in _fields(name):
        takes = ", ".join(n for n in accepted if "step_size" in _fields(n))
        raise UsageError(f"`--step-size` needs a --policy with a step_size ({takes}), but got "
                         f"(--policy={name!r}, --step-size={step_size}).")
