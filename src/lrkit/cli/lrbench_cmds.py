"""``lrkit tasks`` and ``lrkit verify``: LRBench's tasks and auto-verification.

The commands parse, call :func:`lrkit.lrbench.tasks.catalogue.list_tasks` / :func:`lrkit.lrbench.run.verify.verify`,
and format; torch is imported only when a command runs.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

VERIFY_HELP = """Train TASK under POLICY (with OPTIMIZER) for at most BUDGET updates, evaluating every
EVAL_EVERY, and print PASS with the first update count where test accuracy >= TARGET (validation
accuracy with --on val), or FAIL with why:
  - the budget ran out (the best accuracy reached is given);
  - the run diverged (NaN/inf loss, or a loss over 5x the first batch's);
  - the target became unreachable: after half the budget, when even the best recent accuracy
    gain per update, kept for the rest of the budget, plus 0.02, stays below TARGET, and the
    policy's LR ahead stays within 2x of its recent range (no decay or rise still to come).
With several seeds, PASS needs every seed to pass, and the headline is the worst seed ("worst of
N seeds: update U", as `lrkit recommend` reports a pair), each seed's line below it.
Exit status: 0 PASS, 1 FAIL, 2 usage error.

Seeds: --seeds 0,1,2 (or 0-2) runs those seeds, --num-seeds 3 runs seeds 0..2; the default is seed 0.
(A lone --seeds N used to mean N seeds; it now means seed N alone, and says so on stderr.)

example: lrkit verify --task digits-mlp --policy "FIX(k0=0.1)" --target 0.95 --budget 1000 --num-seeds 3"""


def register(subparsers: Any) -> None:
    """Add ``tasks`` and ``verify``."""
    tasks = subparsers.add_parser("tasks", help="list the built-in LRBench tasks",
                                  description="List the built-in tasks with their default optimizer, policy, "
                                              "batch size, evaluation interval, budget and target.")
    tasks.add_argument("--json", action="store_true", help="print JSON")
    tasks.set_defaults(func=cmd_tasks, subparser=tasks)

    verify = subparsers.add_parser("verify", help="verify a policy reaches a target accuracy within a budget",
                                   description=VERIFY_HELP, formatter_class=argparse.RawDescriptionHelpFormatter)
    verify.add_argument("--task", required=True,
                        help="a built-in task (`lrkit tasks`), module:function (or path/file.py:function) returning "
                             "a Task, or your training function train(run)")
    verify.add_argument("--policy", help="policy spec, e.g. \"TRI(k0=0.01, k1=0.1, l=500)\", or @FILE holding one "
                             "(default: the task's)")
    verify.add_argument("--target", type=float, help="target top-1 test accuracy in (0, 1], or a value of --metric "
                                                     "(default: the task's)")
    verify.add_argument("--budget", type=int, help="maximum updates per seed (default: the task's)")
    seeds = verify.add_mutually_exclusive_group()
    seeds.add_argument("--seeds", metavar="S1,S2,..",
                       help="the seeds to run, seeds and ranges separated by commas: 0 or 0,1,2 or 2-4 or 0,5-7 "
                            "(default: seed 0; a lone N is seed N, no longer N seeds)")
    seeds.add_argument("--num-seeds", type=int, metavar="N", help="run N seeds, 0..N-1")
    verify.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N (default: cpu)")
    verify.add_argument("--data-dir", help="folder with the Fashion-MNIST idx .gz files (or set LRKIT_DATA_DIR)")
    verify.add_argument("--optimizer", help="sgd, momentum, nesterov, adam, adamw, rmsprop, adagrad, adadelta, or any "
                                            "torch optimizer as module:Class, e.g. prodigyopt:Prodigy "
                                            "(default: the task's)")
    verify.add_argument("--opt", action="append", default=[], metavar="KEY=VALUE",
                        help="an optimizer argument, e.g. --opt weight_decay=5e-4 (repeatable; VALUE is JSON)")
    verify.add_argument("--eval-every", type=int, help="updates between evaluations (default: the task's)")
    verify.add_argument("--on", choices=("test", "val"), default="test",
                        help="judge on test accuracy (default, as LRBench does) or on the validation split")
    verify.add_argument("--lr-driver", choices=("policy", "torch-onecycle"), default="policy",
                        help="policy: lrkit's PolicyLR (default); torch-onecycle: PyTorch's OneCycleLR built "
                             "from an onecycle spec (it cycles momentum too)")
    add_judging_args(verify)
    verify.add_argument("--no-early-stop", action="store_true", help="never stop a seed as unreachable")
    verify.add_argument("--no-progress", action="store_true",
                        help="do not print each evaluation to stderr (printed by default)")
    verify.add_argument("--json", action="store_true", help="print the result as JSON")
    verify.set_defaults(func=cmd_verify, subparser=verify)


def cmd_tasks(args: argparse.Namespace) -> int:
    from lrkit.lrbench.tasks.catalogue import list_tasks
    from lrkit.text import table

    tasks = list_tasks()
    if args.json:
        print(json.dumps([t.summary() for t in tasks], indent=2))
        return 0
    rows = [("task", "optimizer", "default policy", "batch", "eval every", "budget", "target")]
    for t in tasks:
        opt = t.optimizer + "".join(f" {k}={v:g}" if isinstance(v, float) else f" {k}={v}"
                                    for k, v in t.optimizer_kwargs.items())
        rows.append((t.name, opt, t.default_policy, str(t.batch_size), str(t.eval_every), str(t.budget),
                     f"{t.target:g}"))
    print(table(rows[0], rows[1:]))
    return 0


def parse_seeds(text: str) -> list[int]:
    """The seeds ``--seeds`` names: ``"0"`` -> [0]; ``"0,5,7"`` -> [0, 5, 7]; ``"2-4"`` -> [2, 3, 4];
    ``"0,5-7"`` -> [0, 5, 6, 7]. A trailing comma is allowed (``"2,"`` -> [2])."""
    from lrkit.cli.main import UsageError

    rule = "--seeds takes distinct seeds >= 0 as a list like 0,1,2 or a range like 2-4"
    seeds: list[int] = []
    try:
        for item in (part.strip() for part in text.split(",")):
            low, dash, high = item.partition("-")
            if not item:
                continue
            if dash and int(high) < int(low):
                raise ValueError
            seeds += list(range(int(low), int(high) + 1)) if dash else [int(item)]
    except ValueError:
        raise UsageError(f"{rule}, but got {text!r}") from None
    if not seeds or min(seeds) < 0 or len(set(seeds)) != len(seeds):
        raise UsageError(f"{rule}, but got {text!r}")
    return seeds


def seeds_from_args(args: argparse.Namespace) -> list[int]:
    """The seeds of ``--seeds`` or ``--num-seeds`` (seed 0 without either)."""
    from lrkit.cli.main import UsageError

    if args.num_seeds is not None:
        if args.num_seeds < 1:
            raise UsageError(f"--num-seeds must be >= 1, but got {args.num_seeds}")
        return list(range(args.num_seeds))
    if args.seeds is None:
        return [0]
    seeds = parse_seeds(args.seeds)
    if args.seeds.strip().isdigit() and seeds != [0]:  # it once meant a count: say what runs now
        count = seeds[0]
        first = "seed 0" if count == 1 else f"seeds 0..{count - 1}"
        print(f"note: --seeds {count} runs seed {count} alone; --num-seeds {count} runs {first}", file=sys.stderr)
    return seeds


def parse_opt_args(items: list[str]) -> dict[str, Any]:
    """``["momentum=0.95", "betas=[0.9, 0.99]"]`` -> ``{"momentum": 0.95, "betas": [0.9, 0.99]}``."""
    from lrkit.cli.main import UsageError

    out: dict[str, Any] = {}
    for item in items:
        key, sep, raw = item.partition("=")
        if not sep or not key.strip():
            raise UsageError(f"--opt takes KEY=VALUE, but got {item!r}")
        try:
            out[key.strip()] = json.loads(raw)
        except json.JSONDecodeError:
            out[key.strip()] = raw  # a bare word, e.g. a string option
    return out


def add_judging_args(parser: argparse.ArgumentParser, ranks: bool = True) -> None:
    """``--metric``, ``--mode`` (and ``--ranks``): what a trial is judged on, and how many processes it runs as."""
    parser.add_argument("--metric", help="judge on this metric, a name your training function passes to "
                                         "run.report(...), e.g. val_loss (default: the task's; val_acc / test_acc)")
    parser.add_argument("--mode", choices=("max", "min"),
                        help="max: higher is better (an accuracy); min: lower is better (a loss); default: the "
                             "task's, else max")
    if ranks:
        parser.add_argument("--ranks", type=int, metavar="N",
                            help="run each trial of a training function as N processes (torchrun; default 1)")


def judging_args(args: argparse.Namespace) -> dict[str, Any]:
    """The ``metric``, ``mode`` and ``ranks`` keywords of ``args`` (None where not given)."""
    return {"metric": args.metric, "mode": args.mode, **({"ranks": args.ranks} if hasattr(args, "ranks") else {})}


def cmd_verify(args: argparse.Namespace) -> int:
    from lrkit.cli.spec_arg import policy_arg
    from lrkit.lrbench.tasks.catalogue import get_task
    from lrkit.lrbench.run.verify import verify

    seeds = seeds_from_args(args)
    opt_kwargs = parse_opt_args(args.opt)
    task = get_task(args.task, args.data_dir)
    policy = policy_arg(args.policy) if args.policy is not None else task.default_policy

    def progress(seed: int, p: Any) -> None:
        if p.metrics is not None:  # a training function's metrics, by their own names
            values = "  ".join(f"{k} {v:.4g}" for k, v in p.metrics.items())
            print(f"seed {seed} update {p.step:>7}  lr {p.lr:.4g}  train loss {p.train_loss:.4f}  {values}  "
                  f"{p.seconds:.1f} s", file=sys.stderr)
            return
        val = "" if p.val_acc is None else f"  val acc {p.val_acc:.4f}"
        print(f"seed {seed} update {p.step:>7}  lr {p.lr:.4g}  train loss {p.train_loss:.4f}  "
              f"test loss {p.test_loss:.4f}  test acc {p.test_acc:.4f}{val}  {p.seconds:.1f} s", file=sys.stderr)

    result = verify(task, policy, args.target, args.budget, seeds, args.device, optimizer=args.optimizer,
                    optimizer_kwargs=opt_kwargs, eval_every=args.eval_every, early_stop=not args.no_early_stop,
                    on_eval=None if args.no_progress else progress, on=args.on, lr_driver=args.lr_driver,
                    **judging_args(args))
    print(json.dumps(result.to_dict(), indent=2) if args.json else result.summary())
    return 0 if result.passed else 1
