"""Ctrl-C and ``kill`` end a study run cleanly wherever they land, Optuna's bookkeeping included.

The regression: an interrupt raised just after Optuna started a trial's (non-daemon) heartbeat thread
left that thread running for ever, so the process could not exit (a ``recommend`` sent SIGTERM as a
trial started hung past 60 s in the suite). The tests send the signal at exactly that point.
"""

from __future__ import annotations

import os
import signal
import threading

import pytest
from fakes import FakeRunner
from optuna.storages import _heartbeat
from optuna.trial import TrialState

import lrkit.lrbench.study.storage as st
from lrkit.lrbench.study.interrupts import optuna_bookkeeping, terminate_as_interrupt, trial_code
from lrkit.lrbench.search.recommend import recommend


def _signal_self(signum: int = signal.SIGTERM) -> None:
    os.kill(os.getpid(), signum)


def test_a_signal_inside_optunas_bookkeeping_is_raised_when_it_ends() -> None:
    reached = []
    with terminate_as_interrupt():
        with pytest.raises(KeyboardInterrupt):
            with optuna_bookkeeping():
                _signal_self()
                reached.append("after the signal")  # not interrupted here
    assert reached == ["after the signal"]


def test_lrkits_own_code_is_interrupted_at_once_and_a_noted_signal_is_raised_on_entry() -> None:
    reached = []
    with terminate_as_interrupt():
        with pytest.raises(KeyboardInterrupt), optuna_bookkeeping():
            with trial_code():
                _signal_self()
                reached.append("trial code went on")
        with pytest.raises(KeyboardInterrupt), optuna_bookkeeping():
            _signal_self()
            with trial_code():
                reached.append("a trial started after the signal")
        with optuna_bookkeeping():  # nothing left pending
            reached.append("a later run")
    assert reached == ["a later run"]


def test_ctrl_c_in_a_library_call_is_deferred_too() -> None:
    # Python's own handler, as in an interactive run (a job started in the background inherits SIGINT ignored)
    before = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        _library_call_is_deferred()
    finally:
        signal.signal(signal.SIGINT, before)


def _library_call_is_deferred() -> None:
    with pytest.raises(KeyboardInterrupt), optuna_bookkeeping():
        _signal_self(signal.SIGINT)
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # restored


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_an_interrupt_as_a_trials_heartbeat_starts_closes_the_trial_and_leaves_no_thread(
        tmp_path, monkeypatch: pytest.MonkeyPatch, signum: int) -> None:
    started: list = []
    original = _heartbeat.HeartbeatThread.start

    def start_then_signal(self) -> None:  # noqa: ANN001
        original(self)
        started.append(self)
        if len(started) == 2:  # the second trial: its heartbeat thread runs, its objective has not begun
            _signal_self(signum)

    monkeypatch.setattr(_heartbeat.HeartbeatThread, "start", start_then_signal)
    url = f"sqlite:///{tmp_path / 'lrkit.db'}"
    try:
        with terminate_as_interrupt(), pytest.raises(KeyboardInterrupt):
            recommend("digits-mlp", target=0.9, budget=1000, n_trials=4, storage=url, lr_range=(0.005, 0.2),
                      runner=FakeRunner(), seed=0, optimizer="sgd", baselines=())
        alive = [t for t in threading.enumerate() if t is not threading.main_thread() and not t.daemon]
        assert alive == [], "a heartbeat thread outlived the run: the process could not exit"
        study = st.load_study(st.open_storage(url), None)[0]
        states = [t.state for t in sorted(study.get_trials(), key=lambda t: t.number)]
        assert TrialState.RUNNING not in states  # the interrupted trial is closed
        assert states.count(TrialState.COMPLETE) == 1 and states[-1] == TrialState.FAIL
    finally:
        for beat in started:  # on failure, let a leftover thread end so the suite can exit
            if beat._stop_event is not None:
                beat._stop_event.set()
