"""Ctrl-C and ``kill`` end a study run cleanly, wherever they land.

A ``KeyboardInterrupt`` raised inside Optuna's own bookkeeping can leave the process unable to exit:
``study.optimize`` starts a (non-daemon) heartbeat thread right after ``study.ask()`` and stops it when
the trial ends, and an interrupt that lands between the two leaves that thread running forever, with
its trial RUNNING. (Seen: a ``recommend`` sent SIGTERM just as a trial started hung past 60 s.)

So while Optuna is in charge (:func:`optuna_bookkeeping`, around ``study.optimize``), the signal is only
noted; lrkit's own code (:func:`trial_code`, the objective's body) is interruptible as usual, and a noted
interrupt is raised as soon as either is reached: at the start of the next objective call (Optuna then
fails that trial and re-raises) or when ``study.optimize`` returns, which :func:`stop_when_interrupted`
makes happen after the trial in progress.

:class:`terminate_as_interrupt` (the CLI's commands) handles SIGTERM like Ctrl-C; a library call gets
the deferral for SIGINT from :func:`optuna_bookkeeping` itself.
"""

from __future__ import annotations

import contextlib
import logging
import signal
import threading
from typing import Any, Iterator

_unsafe = 0  # > 0 while Optuna's bookkeeping runs in the main thread
_pending: int | None = None  # a signal noted while unsafe


def _on_signal(signum: int, frame: Any) -> None:
    global _pending
    if _unsafe > 0:
        _pending = signum
        return
    raise KeyboardInterrupt(f"signal {signum}")


def _raise_pending() -> None:
    global _pending
    if _pending is not None:
        signum, _pending = _pending, None
        raise KeyboardInterrupt(f"signal {signum}")


def _install(signum: int) -> Any:
    """Install :func:`_on_signal` for ``signum``; returns the old handler (None: not the main thread)."""
    if threading.current_thread() is not threading.main_thread():
        return None
    return signal.signal(signum, _on_signal)


class terminate_as_interrupt:  # noqa: N801 (a context manager used like a function)
    """Turn SIGTERM (and Ctrl-C) into KeyboardInterrupt, raised outside Optuna's bookkeeping.

    Optuna then marks the trial in progress FAIL at once (finished trials are already committed),
    instead of leaving it RUNNING until its heartbeat goes stale.
    """

    def __enter__(self) -> "terminate_as_interrupt":
        self.old = {s: _install(s) for s in (signal.SIGTERM, signal.SIGINT)}
        return self

    def __exit__(self, *exc: Any) -> None:
        for s, old in self.old.items():
            if old is not None:
                signal.signal(s, old)


class TrialFailed(Exception):
    """A trial's own code raised: the trial is stored FAIL with the error and its traceback (see
    :class:`lrkit.lrbench.search.objective.Objective`), and the study goes on (``study.optimize(catch=...)``)."""


class _QuietInterrupt(logging.Filter):
    """Optuna logs a trial failed by an interrupt with the whole traceback and a second line ("failed with
    value None"); this keeps one line: which trial was interrupted and that it is closed. A trial that
    failed (:class:`TrialFailed`) gets one line too: its error, and where the traceback is kept."""

    def __init__(self) -> None:
        super().__init__()
        self.interrupted: set[str] = set()

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        head = message.split(" failed with ", 1)[0]  # "Trial N"
        if record.exc_info and record.exc_info[0] is not None and issubclass(record.exc_info[0], KeyboardInterrupt):
            self.interrupted.add(head)
            record.msg, record.args, record.exc_info, record.exc_text = f"{head} interrupted: marked FAIL", (), None, None
            return True
        if record.exc_info and record.exc_info[0] is not None and issubclass(record.exc_info[0], TrialFailed):
            self.interrupted.add(head)
            record.msg = (f"{head} failed: {record.exc_info[1]}; stored as FAIL with its traceback (lrkit results "
                          "--all), the study goes on")
            record.args, record.exc_info, record.exc_text = (), None, None
            return True
        return not (head in self.interrupted and " failed with value " in message)


@contextlib.contextmanager
def optuna_bookkeeping() -> Iterator[None]:
    """Around ``study.optimize``: a signal is noted, and raised when this block ends (or in :func:`trial_code`)."""
    global _unsafe, _pending
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    old = None
    if signal.getsignal(signal.SIGINT) is signal.default_int_handler:
        old = _install(signal.SIGINT)
    _unsafe += 1
    quiet = _QuietInterrupt()
    optuna_log = logging.getLogger("optuna.study._optimize")
    optuna_log.addFilter(quiet)
    try:
        yield
    except BaseException:
        _pending = None  # the run ends with this exception anyway
        raise
    finally:
        _unsafe -= 1
        optuna_log.removeFilter(quiet)
        if old is not None:
            signal.signal(signal.SIGINT, old)
    _raise_pending()


@contextlib.contextmanager
def trial_code() -> Iterator[None]:
    """The objective's body: interruptible at once; a signal noted before it started is raised here."""
    global _unsafe
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    saved, _unsafe = _unsafe, 0
    try:
        _raise_pending()
        yield
    finally:
        _unsafe = saved


def stop_when_interrupted(study: Any, trial: Any) -> None:
    """An Optuna callback: stop ``study.optimize`` after this trial if a signal is pending."""
    if _pending is not None:
        study.stop()


__all__ = ["TrialFailed", "optuna_bookkeeping", "stop_when_interrupted", "terminate_as_interrupt", "trial_code"]
