"""``lrkit recommend``, ``worker``, ``results``, ``report``: LRBench's recommender on an Optuna study.

Studies live in an SQLAlchemy database: ``sqlite:///lrkit.db`` by default, any
``postgresql+psycopg://user@host/db`` with ``--storage``. The commands parse, call
:mod:`lrkit.lrbench.search.recommend`, :mod:`lrkit.lrbench.worker`, :mod:`lrkit.lrbench.study.ranking`,
:mod:`lrkit.lrbench.report`, and print what :mod:`lrkit.lrbench.report.formats` writes.
"""

from __future__ import annotations

import argparse
import inspect
import json
from typing import Any


def _storage_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--storage", metavar="URL",
                        help="SQLAlchemy URL or SQLite file (default: sqlite:///lrkit.db); "
                             "e.g. postgresql+psycopg://user@host/db")
    parser.add_argument("--study", metavar="NAME", help="study name")


def table_width() -> int | None:
    """The terminal's width when stdout is one (a table fits it), else None: a file or a pipe gets every line
    whole, whatever ``$COLUMNS`` says (:func:`lrkit.text.terminal_width` would take it)."""
    from lrkit.text import is_terminal, terminal_width

    return terminal_width() if is_terminal() else None


def csv_arg(text: str) -> tuple[str, ...]:
    """An argparse ``type``: a comma-separated list of names as a tuple, none of them empty (``--families=``
    or ``fixed,,cosine`` is a typo, not "the default")."""
    names = tuple(x.strip() for x in text.split(","))
    if not all(names):
        raise argparse.ArgumentTypeError(f"takes names separated by commas, none of them empty, but got {text!r}")
    return names


def register(subparsers: Any) -> None:
    """Add ``recommend``, ``worker``, ``results`` and ``report``."""
    _register_recommend(subparsers)
    _register_worker(subparsers)
    _register_results(subparsers)
    _register_report(subparsers)


def _register_recommend(subparsers: Any) -> None:
    """Add ``recommend``."""
    from lrkit.cli.lrbench_cmds import add_judging_args

    rec = subparsers.add_parser("recommend", help="search optimizers and LR policies; recommend the fastest pair to a target",
                                description=inspect.cleandoc(cmd_recommend.__doc__), formatter_class=argparse.RawDescriptionHelpFormatter)
    rec.add_argument("--task", required=True, help="task name (lrkit tasks), module:function returning a Task, or "
                                                   "your training function train(run) (path/file.py:train works)")
    rec.add_argument("--target", type=float, help="target top-1 accuracy in (0, 1], or a value of --metric "
                                                  "(default: the task's)")
    rec.add_argument("--budget", type=int, help="most updates per trial (default: the task's)")
    rec.add_argument("--optimizer", help="search this one optimizer (a name or module:Class)")
    rec.add_argument("--optimizers", type=csv_arg, metavar="A,B,..",
                     help="search these optimizers (names or module:Class; default: the task's, adam, "
                          "prodigyopt:Prodigy, schedulefree:AdamWScheduleFree)")
    rec.add_argument("--opt", action="append", default=[], metavar="KEY=VALUE",
                     help="optimizer argument (repeat); each optimizer takes those it accepts")
    rec.add_argument("--baselines", type=csv_arg, metavar="A,B,..|none",
                     help="peers to run beside the search (default all: adam, adamw-cosine, prodigy, "
                          "schedulefree-adamw, dadapt-adam, onecycle)")
    rec.add_argument("--on", choices=("val", "test"),
                     help="what the search selects on (default: val, the task's validation split)")
    rec.add_argument("--eval-every", type=int, help="updates between evaluations (default: the task's)")
    add_judging_args(rec)
    rec.add_argument("--repeats", type=int, default=1,
                     help="rerun the candidates and yardsticks that can still rank first on this many more seeds "
                          "(default 1: the recommendation is confirmed on a second seed; 0: one seed, unconfirmed)")
    rec.add_argument("--trials", type=int, default=30, help="candidates in the study in total (default 30)")
    _storage_args(rec)
    rec.add_argument("--families", type=csv_arg, help="comma-separated policy families to search (default: all)")
    rec.add_argument("--pruner", choices=("target", "none"), default="target",
                     help="'target': stop candidates that can no longer rank first (default); 'none'")
    rec.add_argument("--lr-range", default="auto", metavar="auto|grid|range-test|LOW:HIGH",
                     help="how to find each optimizer's LR range (default auto: range test, else FIX grid), "
                          "or one range for all, e.g. 0.01:0.5")
    rec.add_argument("--seed", type=int, default=0, help="training and sampler seed (default 0)")
    rec.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N")
    rec.add_argument("--create-only", action="store_true",
                     help="set the study up (LR ranges, yardsticks queued; once the search has its candidates, "
                          "the --repeats of its best) and exit; then start workers")
    rec.add_argument("--no-lookup", action="store_true",
                     help="do not first verify the best methods other studies of this task in the storage "
                          "found, nor the best draws of studies of other tasks")
    rec.add_argument("--no-portfolio", action="store_true",
                     help="do not start the search from lrkit's portfolio of configurations that were fastest "
                          "in hindsight (by default at most half the --trials)")
    rec.add_argument("--no-knobs", action="store_true",
                     help="do not draw the LR-free and schedule-free optimizers' own arguments (weight decay, "
                          "their warm-up) beside the policy; an argument given with --opt is never drawn")
    rec.add_argument("--forks", type=int, default=0, metavar="N",
                     help="fork up to N decays off each WSD candidate's run (its schedule for shorter budgets), "
                          "each trained from its state as a candidate of its own (default 0: none)")
    rec.add_argument("--top", type=int, default=12, help="rows of the ranking to print (default 12)")
    rec.add_argument("--json", action="store_true", help="print the recommendation as JSON")
    rec.add_argument("--no-progress", action="store_true", help="no progress lines or bars")
    rec.set_defaults(func=cmd_recommend, subparser=rec)


def _register_worker(subparsers: Any) -> None:
    """Add ``worker``."""
    work = subparsers.add_parser("worker", help="join an existing recommendation study and run its trials",
                                 description=inspect.cleandoc(cmd_worker.__doc__), formatter_class=argparse.RawDescriptionHelpFormatter)
    _storage_args(work)
    work.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N")
    work.add_argument("--heartbeat-interval", type=int, help="seconds between heartbeats (default 10)")
    work.add_argument("--grace-period", type=int, help="seconds of silence before a trial counts as dead (default 30)")
    work.add_argument("--no-progress", action="store_true", help="no progress lines or bars")
    work.set_defaults(func=cmd_worker, subparser=work)


def _register_results(subparsers: Any) -> None:
    """Add ``results``."""
    out = subparsers.add_parser("results", help="list a study's methods and trials with their metrics",
                                description=inspect.cleandoc(cmd_results.__doc__),
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    _storage_args(out)
    out.add_argument("--format", choices=("table", "json", "csv"), default="table")
    out.add_argument("--all", action="store_true", help="one row per trial (every seed, running and failed ones too)")
    out.add_argument("--by", choices=("optimizer",), help="optimizer: the family x optimizer table")
    out.set_defaults(func=cmd_results, subparser=out)


def _register_report(subparsers: Any) -> None:
    """Add ``report``."""
    rep = subparsers.add_parser("report", help="write a self-contained HTML report of a study",
                                description=inspect.cleandoc(cmd_report.__doc__))
    _storage_args(rep)
    rep.add_argument("-o", "--output", default="report.html", help="HTML file to write (default report.html)")
    rep.add_argument("--force", action="store_true", help="replace the file if it exists")
    rep.add_argument("--top", type=int, default=5, help="policies to draw (default 5)")
    rep.set_defaults(func=cmd_report, subparser=rep)


def cmd_recommend(args: argparse.Namespace) -> int:
    """Search optimizers and LR policies for the pair that reaches --target in the fewest updates.

    Finds each optimizer's LR range, runs the task's default policy and the baselines (Adam, AdamW +
    cosine, Prodigy, schedule-free AdamW, D-Adaptation, OneCycleLR at the range test's LR) and --trials
    candidates (Optuna TPE across optimizers and policy families; hopeless ones pruned), judged on the
    task's validation split, then reruns those that can still rank first on --repeats more seeds (default
    1). Ranks every method by its worst seed and prints the table, the recommended optimizer and spec, its
    speed-up on test accuracy over the default and over the best baseline (worst of N seeds), which to use
    when a baseline won, what the search cost in full-budget trials, and the `lrkit verify` command that
    re-runs it. Ctrl-C keeps every finished trial; the same command continues.

    Example:
      lrkit recommend --task digits-mlp --target 0.95 --budget 600 --trials 20
    """
    from lrkit.cli.lrbench_cmds import judging_args, parse_opt_args
    from lrkit.lrbench.report.formats import format_methods
    from lrkit.lrbench.search.recommend import recommend
    from lrkit.lrbench.study.interrupts import terminate_as_interrupt
    from lrkit.lrbench.study.progress import line_logger

    lr_range = parse_lr_range(args.lr_range)
    baselines = args.baselines
    if baselines == ("none",):
        baselines = ()
    with terminate_as_interrupt():
        rec = recommend(args.task, target=args.target, budget=args.budget,
                        optimizer=args.optimizer, optimizers=args.optimizers,
                        optimizer_kwargs=parse_opt_args(args.opt) or None, n_trials=args.trials,
                        storage=args.storage, study_name=args.study, families=args.families, pruner=args.pruner,
                        lr_range=lr_range, seed=args.seed, device=args.device,
                        progress=not args.no_progress, log=line_logger(),
                        create_only=args.create_only, eval_every=args.eval_every, repeats=args.repeats,
                        baselines=baselines, on=args.on, lookup=not args.no_lookup,
                        portfolio=not args.no_portfolio, knobs=not args.no_knobs, forks=args.forks,
                        **judging_args(args))
    if args.create_only:
        print(f"study {rec.study_name!r} is ready: start workers with "
              f"`lrkit worker --study {rec.study_name} --storage {args.storage or 'sqlite:///lrkit.db'}`")
        return 0
    if args.json:
        print(json.dumps(rec.to_dict(), indent=1))
        return 0 if rec.best else 1
    print(format_methods(rec.ranked[: args.top], on=rec.config.on, width=table_width(), metric=rec.config.metric,
                         mode=rec.config.mode))
    print()
    print(rec.summary())
    if rec.failures:
        print(rec.failures)
    return 0 if rec.best is not None else 1


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


def cmd_worker(args: argparse.Namespace) -> int:
    """Join a study made by `lrkit recommend` (from any process or machine) and run its trials until done.

    Example:
      lrkit recommend --task digits-mlp --storage postgresql+psycopg://me@db/lrkit --study s1 --create-only
      lrkit worker --study s1 --storage postgresql+psycopg://me@db/lrkit    # on each machine
    """
    from lrkit.lrbench.worker import run_worker

    out = run_worker(args.storage, args.study, device=args.device, progress=not args.no_progress,
                     heartbeat_interval=args.heartbeat_interval, grace_period=args.grace_period)
    print(f"worker ran {out['ran']} trials of study {out['study']!r}; best so far: {out['optimizer']} with "
          f"{out['best']} ({out['speedup']})")
    return 0


def cmd_results(args: argparse.Namespace) -> int:
    """List a study's methods, ranked by their worst seed, as table/json/csv.

    Each row is a method (optimizer, arguments, policy) over every seed it ran with: seeds reached /
    seeds run, worst-seed updates-to-target and accuracy on the metric the study selects on (validation),
    the spread across seeds with its unit, and the test numbers beside them. Works on a study that
    workers are still running (SQLite in WAL mode, or PostgreSQL): run it again to watch.

      --all            one row per trial (every seed; running, failed and duplicate trials too)
      --by optimizer   the mutual-impact table: policy family x optimizer
    """
    from lrkit.lrbench.report import formats
    from lrkit.lrbench.study import ranking as res
    from lrkit.lrbench.study.storage import load_study, open_storage

    study, config = load_study(open_storage(args.storage, must_exist=True, read_only=True), args.study)
    recs = res.records(study)
    if config.compose and not args.all and args.by is None:  # a composition: its tree of stage trials
        from lrkit.lrbench.composition.stagewise import summarize_composition

        print(summarize_composition(study, config).format(args.format))
        return 0
    if args.by == "optimizer":
        print(formats.format_by_optimizer(res.by_optimizer(res.rank(recs)), args.format))
    elif args.all:
        print(formats.format_trials(recs, args.format))
    else:
        print(formats.format_methods(res.rank(recs), args.format, on=config.on, width=table_width(),
                                     metric=config.metric, mode=config.mode))
        note = res.failure_note(recs) if args.format == "table" else ""
        if note:
            print("\n" + note)
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    """Write one self-contained HTML page: the recommendation beside the baselines, top LR curves,
    accuracy against updates, the family x optimizer heatmap and the ranked table."""
    from lrkit.lrbench.report.page import write_report
    from lrkit.lrbench.study.storage import load_study, open_storage

    study, _ = load_study(open_storage(args.storage, must_exist=True, read_only=True), args.study)
    print(f"wrote {write_report(study, args.output, top=args.top, overwrite=args.force)}")
    return 0
