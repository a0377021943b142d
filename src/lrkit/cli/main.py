"""``lrkit``: learning-rate policies, the LR range test and LRBench from the command line.

Each subcommand lives in its own module with ``register(subparsers)``, which adds a parser whose
``func(args) -> int`` does the work. Command modules import torch only inside ``func``, so
``lrkit policies`` stays fast. User mistakes print ``error: ...`` and exit 2, and so does a
missing optional dependency, naming the extra to install (:mod:`lrkit.extras`); ``--debug`` shows
the traceback instead.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from lrkit.errors import LRKitError

COMMAND_MODULES = (
    "lrkit.cli.policy_cmds",   # policies, show, plot, simulate
    "lrkit.cli.range_cmd",     # range-test
    "lrkit.cli.lrbench_cmds",    # tasks, verify
    "lrkit.cli.study_cmds",    # recommend, worker, results, report
    "lrkit.cli.compose_cmd",   # compose
)


class UsageError(LRKitError):
    """A command-line mistake: the message is shown with the command's usage."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="lrkit", description="Learning-rate policies, the LR range test and LRBench from the command line.")
    parser.add_argument("--debug", action="store_true", help="show tracebacks for errors")
    parser.add_argument("--version", action="version", version=f"lrkit {_version()}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module in COMMAND_MODULES:
        importlib.import_module(module).register(subparsers)
    return parser


def _version() -> str:
    import lrkit

    return lrkit.__version__


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except BrokenPipeError:
        # `lrkit policies | head`: the reader left; silence the flush at exit too
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except ModuleNotFoundError as err:
        from lrkit.extras import missing_extra

        known = missing_extra(err, "this command")
        if known is None or args.debug:
            raise
        print(f"lrkit {args.command}: error: {known}", file=sys.stderr)
        return 2
    except LRKitError as err:
        if args.debug:
            raise
        sub = getattr(args, "subparser", None)
        if isinstance(err, UsageError) and sub is not None:
            sub.print_usage(sys.stderr)
        print(f"lrkit {args.command}: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
