"""``lrkit recommend``, ``worker``, ``results``, ``report``: LRBench's recommender on an Optuna study.

Studies live in an SQLAlchemy database: ``sqlite:///lrkit.db`` by default, any
``postgresql+psycopg://user@host/db`` with ``--storage``. The commands parse, call
:mod:`lrkit.lrbench.recommend` / ``worker`` / ``results`` / ``report``, and format.
"""

from __future__ import annotations

import argparse
import inspect
import json
import sys
from typing import Any


def _storage_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--storage", metavar="URL",
                        help="SQLAlchemy URL or SQLite file (default: sqlite:///lrkit.db); "
                             "e.g. postgresql+psycopg://user@host/db")
    parser.add_argument("--study", metavar="NAME", help="study name")


def register(subparsers: Any) -> None:
    rec = subparsers.add_parser("recommend", help="search LR policies for a task; recommend the fastest to a target",
                                description=inspect.cleandoc(cmd_recommend.__doc__), formatter_class=argparse.RawDescriptionHelpFormatter)
    rec.add_argument("--task", required=True, help="task name (lrkit tasks) or module:function")
    rec.add_argument("--target", type=float, help="target top-1 test accuracy in (0, 1] (default: the task's)")
    rec.add_argument("--budget", type=int, help="most updates per trial (default: the task's)")
    rec.add_argument("--optimizer", help="optimizer name (default: the task's)")
    rec.add_argument("--opt", action="append", default=[], metavar="KEY=VALUE", help="optimizer argument (repeat)")
    rec.add_argument("--eval-every", type=int, help="updates between evaluations (default: the task's)")
    rec.add_argument("--repeats", type=int, default=0,
                     help="rerun the 3 best candidates with this many more seeds (robustness term; default 0)")
    rec.add_argument("--trials", type=int, default=30, help="candidates in the study in total (default 30)")
    _storage_args(rec)
    rec.add_argument("--families", help="comma-separated policy families to search (default: all)")
    rec.add_argument("--pruner", choices=("target", "none"), default="target",
                     help="'target': stop candidates that can no longer rank first (default); 'none'")
    rec.add_argument("--lr-range", default="auto", metavar="auto|grid|range-test|LOW:HIGH",
                     help="how to find the candidates' LR range (default auto: range test, else FIX grid), "
                          "or the range itself, e.g. 0.01:0.5")
    rec.add_argument("--seed", type=int, default=0, help="training and sampler seed (default 0)")
    rec.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N")
    rec.add_argument("--create-only", action="store_true",
                     help="create the study (LR range, default policy queued) and exit; then start workers")
    rec.add_argument("--top", type=int, default=10, help="rows of the ranking to print (default 10)")
    rec.add_argument("--json", action="store_true", help="print the recommendation as JSON")
    rec.add_argument("--no-progress", action="store_true", help="no progress bar")
    rec.set_defaults(func=cmd_recommend, subparser=rec)

    work = subparsers.add_parser("worker", help="join an existing recommendation study and run its trials",
                                 description=inspect.cleandoc(cmd_worker.__doc__), formatter_class=argparse.RawDescriptionHelpFormatter)
    _storage_args(work)
    work.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N")
    work.add_argument("--heartbeat-interval", type=int, help="seconds between heartbeats (default 10)")
    work.add_argument("--grace-period", type=int, help="seconds of silence before a trial counts as dead (default 30)")
    work.add_argument("--no-progress", action="store_true", help="no progress bar")
    work.set_defaults(func=cmd_worker, subparser=work)

    out = subparsers.add_parser("results", help="list a study's trials with their metrics",
                                description=inspect.cleandoc(cmd_results.__doc__))
    _storage_args(out)
    out.add_argument("--format", choices=("table", "json", "csv"), default="table")
    out.add_argument("--all", action="store_true", help="also list trials without a result (running, failed)")
    out.set_defaults(func=cmd_results, subparser=out)

    rep = subparsers.add_parser("report", help="write a self-contained HTML report of a study",
                                description=inspect.cleandoc(cmd_report.__doc__))
    _storage_args(rep)
    rep.add_argument("-o", "--output", default="report.html", help="HTML file to write (default report.html)")
    rep.add_argument("--top", type=int, default=5, help="policies to draw (default 5)")
    rep.set_defaults(func=cmd_report, subparser=rep)


def cmd_recommend(args: argparse.Namespace) -> int:
    """Search the policy catalogue for the policy that reaches --target in the fewest updates.

    Finds the LR range, runs the task's default policy and --trials candidates (Optuna TPE across the
    families; hopeless ones pruned), ranks them and prints the table and the recommended spec with its
    speed-up over the default. Ctrl-C keeps every finished trial; the same command again continues.

    Example:
      lrkit recommend --task digits-mlp --target 0.95 --budget 600 --trials 20
    """
    from lrkit.lrbench import results as res
    from lrkit.lrbench.recommend import recommend
    from lrkit.lrbench.tasks import get_task
    from lrkit.lrbench.worker import terminate_as_interrupt
    from lrkit.cli.lrbench_cmds import parse_opt_args
    from lrkit.cli.main import UsageError

    if args.trials < 1:
        raise UsageError(f"--trials must be >= 1, but got {args.trials}")
    if args.budget is not None and args.budget < 1:
        raise UsageError(f"--budget must be >= 1, but got {args.budget}")
    if args.target is not None and not 0 < args.target <= 1:
        raise UsageError(f"--target is an accuracy in (0, 1], but got {args.target}")
    if args.repeats < 0:
        raise UsageError(f"--repeats must be >= 0, but got {args.repeats}")
    if args.eval_every is not None and args.eval_every < 1:
        raise UsageError(f"--eval-every must be >= 1, but got {args.eval_every}")
    lr_range = parse_lr_range(args.lr_range)
    families = tuple(f.strip() for f in args.families.split(",") if f.strip()) if args.families else None
    task = get_task(args.task)
    log = lambda msg: print(msg, file=sys.stderr)  # noqa: E731
    with terminate_as_interrupt():
        rec = recommend(task, target=args.target, budget=args.budget, optimizer=args.optimizer,
                        optimizer_kwargs=parse_opt_args(args.opt) or None, n_trials=args.trials,
                        storage=args.storage, study_name=args.study, families=families, pruner=args.pruner,
                        lr_range=lr_range, seed=args.seed, device=args.device,
                        progress=not args.no_progress and not args.json, log=log, create_only=args.create_only,
                        eval_every=args.eval_every, repeats=args.repeats)
    if args.create_only:
        print(f"study {rec.study_name!r} is ready: start workers with "
              f"`lrkit worker --study {rec.study_name} --storage {args.storage or 'sqlite:///lrkit.db'}`")
        return 0
    verify = verify_command(task, rec)
    if args.json:
        print(json.dumps({"study": rec.study_name, "recommended": rec.spec, "family": rec.best.family if rec.best else None,
                          "steps_to_target": rec.best.get("steps_to_target") if rec.best else None,
                          "best_acc": rec.best.get("best_acc") if rec.best else None,
                          "speedup": rec.speedup, "speedup_text": rec.speedup_text,
                          "default": rec.config.default_spec, "verify": verify,
                          "ranking": [r.row() for r in rec.ranked]}, indent=1))
        return 0
    print(res.format_records(rec.ranked[: args.top]))
    print()
    if rec.best is None:
        print("no candidate finished")
        return 1
    print(f"recommended: {rec.spec}")
    print(f"speed-up over the default {rec.config.default_spec}: {rec.speedup_text}")
    print(f"re-run it: {verify}")
    return 0


def parse_lr_range(text: str) -> str | tuple[float, float]:
    """``auto``, ``grid``, ``range-test``, or ``LOW:HIGH`` with ``0 < LOW < HIGH``."""
    from lrkit.cli.main import UsageError

    if text in ("auto", "grid", "range-test"):
        return text
    try:
        low, high = (float(v) for v in text.split(":"))
    except ValueError:
        raise UsageError(f"--lr-range is auto, grid, range-test or LOW:HIGH, but got {text!r}") from None
    if not 0 < low < high:
        raise UsageError(f"--lr-range LOW:HIGH needs 0 < LOW < HIGH, but got (low={low}, high={high})")
    return low, high


def verify_command(task: Any, rec: Any) -> str:
    """The ``lrkit verify`` command that re-runs the recommended spec under the study's set-up."""
    import shlex

    cfg = rec.config
    # the task as the user named it (a built-in name or module:function), so the command runs as printed
    parts = ["lrkit", "verify", "--task", cfg.task, "--target", f"{cfg.target:g}", "--budget", str(cfg.budget)]
    if cfg.optimizer != task.optimizer or dict(cfg.optimizer_kwargs) != dict(task.optimizer_kwargs):
        parts += ["--optimizer", cfg.optimizer]
        parts += [a for k, v in cfg.optimizer_kwargs.items() for a in ("--opt", f"{k}={json.dumps(v)}")]
    if cfg.seed:
        parts += ["--seeds", f"{cfg.seed},"]  # a list of one seed; a bare N would mean seeds 0..N-1
    if cfg.eval_every:
        parts += ["--eval-every", str(cfg.eval_every)]
    parts += ["--policy", rec.spec or "SPEC"]
    return " ".join(shlex.quote(p) for p in parts)


def cmd_worker(args: argparse.Namespace) -> int:
    """Join a study made by `lrkit recommend` (from any process or machine) and run its trials until done.

    Example:
      lrkit recommend --task digits-mlp --storage postgresql+psycopg://me@db/lrkit --study s1 --create-only
      lrkit worker --study s1 --storage postgresql+psycopg://me@db/lrkit    # on each machine
    """
    from lrkit.lrbench.worker import run_worker

    out = run_worker(args.storage, args.study, device=args.device, progress=not args.no_progress,
                     heartbeat_interval=args.heartbeat_interval, grace_period=args.grace_period)
    print(f"worker ran {out['ran']} trials of study {out['study']!r}; best so far: {out['best']} ({out['speedup']})")
    return 0


def cmd_results(args: argparse.Namespace) -> int:
    """List a study's trials, ranked (updates-to-target, then accuracy, then robustness), as table/json/csv."""
    from lrkit.lrbench import results as res
    from lrkit.lrbench.storage import load_study, open_storage

    study, _ = load_study(open_storage(args.storage, must_exist=True), args.study)
    recs = res.records(study)
    ranked = res.rank(recs)
    if args.all:
        ranked += [r for r in recs if r.result is None]
    print(res.format_records(ranked, args.format))
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    """Write one self-contained HTML page: top LR curves, accuracy against updates, the ranked table."""
    from lrkit.lrbench.report import write_report
    from lrkit.lrbench.storage import load_study, open_storage

    study, _ = load_study(open_storage(args.storage, must_exist=True), args.study)
    print(write_report(study, args.output, top=args.top))
    return 0
