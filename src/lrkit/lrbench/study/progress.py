"""What a running study tells its user: a line per finished trial, and never a minute of silence.

On a terminal each trial shows a tqdm bar over its updates (with the last validation accuracy), and
every finished trial prints one line above the bars; elsewhere (a log, a pipe, CI) a finished trial
prints its line, and a trial still running prints a line at its first evaluation past every
``every`` seconds (30 by default), so the log never stays silent for long. A worker's lines start with
its name, and :func:`prefixed_output` gives the same prefix to what the code it runs prints itself
(Prodigy's ``Using decoupled weight decay`` when it is built, which
:func:`lrkit.lrbench.tasks.optimizers.make_optimizer` sends to stderr), so every line says whose it is.
"""

from __future__ import annotations

import contextlib
import sys
import time
from typing import Any, Callable, Iterator, TextIO

from lrkit.lrbench.study.schema import ATTR_BASELINE, ATTR_RESULT, ATTR_ROLE
from lrkit.text import is_terminal


class StudyProgress:
    """Progress of one process's trials (see the module docstring).

    Args:
        budget: updates per trial (the bar's length).
        stream: where lines go (default stderr).
        bar: draw tqdm bars (default: when ``stream`` is a terminal).
        every: seconds between two lines of a running trial when there is no bar.
        prefix: put in front of every line (e.g. a worker's name).
    """

    def __init__(self, budget: int, *, stream: TextIO | None = None, bar: bool | None = None, every: float = 30.0,
                 prefix: str = "") -> None:
        self.budget, self.stream = budget, stream or sys.stderr
        self.bar = is_terminal(self.stream) if bar is None else bar
        self.every, self.prefix = every, prefix
        self._bars: dict[int, Any] = {}
        self._last_line: dict[int, float] = {}
        self._started: dict[int, float] = {}
        self._what: dict[int, str] = {}

    def _say(self, text: str) -> None:
        line = f"{self.prefix}{text}"
        if self.bar:
            from tqdm import tqdm

            tqdm.write(line, file=self.stream)
        else:
            print(line, file=self.stream, flush=True)

    def trial_started(self, trial: Any, method: Any, seed: int) -> None:
        role = trial.user_attrs.get(ATTR_BASELINE) or trial.user_attrs.get(ATTR_ROLE, "candidate")
        what = f"trial {trial.number} ({role}, {method.optimizer}, seed {seed})"
        self._what[trial.number] = what
        self._started[trial.number] = self._last_line[trial.number] = time.monotonic()
        if self.bar:
            from tqdm import tqdm

            self._bars[trial.number] = tqdm(total=self.budget, desc=what, unit="upd", file=self.stream,
                                            dynamic_ncols=True, leave=False)
        else:
            self._say(f"{what} started: {method.spec}")

    def evaluation(self, trial: Any, point: Any) -> None:
        acc = point.val_acc if point.val_acc is not None else point.test_acc
        bar = self._bars.get(trial.number)
        if bar is not None:
            bar.n = point.step
            bar.set_postfix_str(f"acc {acc:.4f}", refresh=True)
            return
        now = time.monotonic()
        if now - self._last_line.get(trial.number, now) >= self.every:
            self._last_line[trial.number] = now
            self._say(f"{self._what.get(trial.number, f'trial {trial.number}')}: update {point.step}/{self.budget}, "
                      f"accuracy {acc:.4f}")

    def trial_done(self, trial: Any, note: str = "") -> None:
        bar = self._bars.pop(trial.number, None)
        if bar is not None:
            bar.close()
        result = trial.user_attrs.get(ATTR_RESULT) or {}
        what = self._what.pop(trial.number, f"trial {trial.number}")
        took = time.monotonic() - self._started.pop(trial.number, time.monotonic())
        steps, test_steps = result.get("steps_to_target"), result.get("test_steps_to_target")
        on = result.get("on", "test")
        acc = result.get("best_val_acc") if on == "val" else result.get("best_acc")
        reached = (f"target at {steps} ({on}), {test_steps if test_steps is not None else '-'} (test)"
                   if steps is not None else f"{result.get('status', '?')}, best {on} accuracy {acc or 0:.4f}")
        self._say(f"{what} done: {reached}; {result.get('steps', 0)} updates, {took:.0f} s"
                  + (f"; {note}" if note else "") + f" | {result.get('spec', '')}")

    def close(self) -> None:
        for bar in self._bars.values():
            bar.close()
        self._bars.clear()


@contextlib.contextmanager
def study_progress(budget: int, enabled: bool, *, prefix: str = "") -> Iterator[StudyProgress | None]:
    """A :class:`StudyProgress` for the ``with`` block when ``enabled`` (closed however the block ends), else None."""
    reporter = StudyProgress(budget, prefix=prefix) if enabled else None
    try:
        yield reporter
    finally:
        if reporter is not None:
            reporter.close()


class PrefixedStream:
    """A text stream that writes to ``stream`` with ``prefix`` at the start of every line (text kept whole)."""

    def __init__(self, stream: TextIO, prefix: str) -> None:
        self.stream, self.prefix, self._at_start = stream, prefix, True

    def write(self, text: str) -> int:
        out = []
        for piece in text.splitlines(keepends=True):
            out.append((self.prefix if self._at_start else "") + piece)
            self._at_start = piece.endswith("\n")
        self.stream.write("".join(out))
        return len(text)

    def flush(self) -> None:
        self.stream.flush()

    def isatty(self) -> bool:
        return False


@contextlib.contextmanager
def prefixed_output(prefix: str) -> Iterator[None]:
    """Within the block, every line printed to stdout or stderr starts with ``prefix`` (each stream keeps its
    destination): a worker's trials print nothing unlabelled. Streams taken before the block (a
    :class:`StudyProgress`, a :func:`line_logger`) are not wrapped, so their own prefix is not doubled."""
    with contextlib.redirect_stdout(PrefixedStream(sys.stdout, prefix)), \
            contextlib.redirect_stderr(PrefixedStream(sys.stderr, prefix)):
        yield


def line_logger(stream: TextIO | None = None) -> Callable[[str], None]:
    """A ``log`` callable that prints each message as one line (to stderr by default)."""
    out = stream or sys.stderr
    return lambda msg: print(msg, file=out, flush=True)


__all__ = ["PrefixedStream", "StudyProgress", "line_logger", "prefixed_output", "study_progress"]
