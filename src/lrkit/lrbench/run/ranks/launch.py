"""The launching side of a multi-process trial: start the ranks, serve rank 0's evaluations to the caller's
``on_eval``, watch the ranks, and tell which rank failed and why (:mod:`lrkit.lrbench.run.ranks`)."""

from __future__ import annotations

import collections
import dataclasses
import json
import os
import pickle
import select
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any, Callable

import torch

from lrkit.errors import LRKitError
from lrkit.lrbench.run.protocol import ProtocolError
from lrkit.lrbench.run.result import EvalPoint, TrialResult
from lrkit.lrbench.tasks.loading import is_reference

#: set in every rank, so that a rank cannot start a multi-process trial of its own
RANK_ENV = "LRKIT_TRIAL_RANKS"
#: rank 0's end of the channel to :func:`run_ranks`: "READ_FD,WRITE_FD"
CHANNEL_ENV = "LRKIT_TRIAL_CHANNEL"
#: seconds the ranks still running get once one rank has finished (a rank that trains on would hang)
FINISH_SECONDS = 60.0
#: seconds to wait, after a rank failed, for the errors the others write (to tell the cause from its effects)
SETTLE_SECONDS = 0.5


class RankFailed(LRKitError):
    """A rank of a multi-process trial failed (``rank``; ``returncode``: negative for a signal)."""

    def __init__(self, message: str, rank: int, returncode: int) -> None:
        super().__init__(message)
        self.rank, self.returncode = rank, returncode


def run_ranks(task: Any, train_trial: Callable[..., TrialResult], policy: Any, lrs: Any, settings: Any, *,
              start: Any = None, keep_losses: bool = False, threads: int | None = 1) -> TrialResult:
    """Run one trial of ``task`` as ``task.ranks`` processes; each calls ``train_trial`` (the runner's ``_train``).

    Raises:
        LRKitError: the trial cannot run as several processes (a composition's fork; a training function
            no new process can import; a device other than ``cpu`` / ``cuda``; too few GPUs).
        RankFailed: a rank failed (a rank's ``ProtocolError`` is raised as a ``ProtocolError``).
    """
    if start is not None or settings.keep_state or settings.keep_states_at:
        raise LRKitError(f"lrkit cannot fork a multi-process trial yet (task {task.name!r} runs as {task.ranks} "
                         "processes): compose, or search with forks, on task.replace(ranks=1)")
    if os.environ.get(RANK_ENV):
        raise LRKitError("a rank of a multi-process trial started a multi-process trial of its own (does the "
                         "training function's module run a trial when it is imported?)")
    if os.name != "posix":
        raise LRKitError(f"a multi-process trial needs a POSIX system, but this is {os.name!r}")
    devices = _devices(settings.device, task.ranks)
    reference, name = task_reference(task), getattr(task.train, "__qualname__", "")
    with tempfile.TemporaryDirectory(prefix="lrkit-ranks-") as folder:
        trial = {"reference": reference, "name": name, "task": _plain_fields(task), "train_trial": train_trial,
                 "policy": policy, "lrs": lrs, "settings": dataclasses.replace(settings, on_eval=None),
                 "keep_losses": keep_losses, "threads": threads, "devices": devices, "sys_path": list(sys.path),
                 "backend": "nccl" if devices[0].startswith("cuda") else "gloo"}
        Path(folder, "trial.pkl").write_bytes(pickle.dumps(trial))
        job = _Job(Path(folder), task.ranks, settings.on_eval)
        try:
            job.start()
            job.wait()
        finally:
            job.end()
        result = pickle.loads(Path(folder, "result.pkl").read_bytes())
    result.device = settings.device
    return result


def task_reference(task: Any) -> str:
    """What a new process loads ``task``'s training function from: the task's name when it is a reference
    (``get_task("path/file.py:train")``), else the module (or file) and name of the function itself.

    Raises:
        LRKitError: the function is not defined at the top level of a module or file (a local function, a
            lambda, a notebook cell), so no other process can import it.
    """
    if is_reference(task.name):
        module, _, attr = task.name.rpartition(":")
        return f"{os.path.abspath(module)}:{attr}" if module.endswith(".py") or os.sep in module else task.name
    train = task.train
    qualname = getattr(train, "__qualname__", "")
    module = sys.modules.get(getattr(train, "__module__", None) or "")
    file = getattr(module, "__file__", None)
    if module is not None and qualname and "<" not in qualname:
        spec = getattr(module, "__spec__", None)
        name = spec.name if module.__name__ == "__main__" and spec is not None else module.__name__  # python -m
        if "." in name:  # in a package: imported by name, so that its relative imports work
            return f"{name}:{qualname}"
        if file and file.endswith(".py"):
            return f"{os.path.abspath(file)}:{qualname}"
    raise LRKitError(f"task {task.name!r} runs as {task.ranks} processes, and each must import its training "
                     f"function, but {qualname or train!r} is not defined at the top level of a module or file: "
                     "define it there and load it with get_task('path/to/file.py:train') (or 'module:train')")


def _devices(device: str, ranks: int) -> list[str]:
    if device == "cpu":
        return ["cpu"] * ranks
    if device not in ("cuda", "cuda:0"):
        raise LRKitError(f"a trial of {ranks} processes takes device 'cpu' or 'cuda' (rank r trains on cuda:r; "
                         f"choose the GPUs with CUDA_VISIBLE_DEVICES), but got (device={device!r}).")
    if torch.cuda.device_count() < ranks:
        raise LRKitError(f"a trial of {ranks} processes on CUDA needs {ranks} GPUs, but torch sees "
                         f"{torch.cuda.device_count()}")
    return [f"cuda:{r}" for r in range(ranks)]


def _plain_fields(task: Any) -> dict[str, Any]:
    """The task's fields a rank sets on the task it loads (not its functions)."""
    skip = ("train", "make_model", "load_data", "loss")
    values = {f.name: getattr(task, f.name) for f in dataclasses.fields(task) if f.name not in skip}
    values["optimizer_kwargs"] = dict(values.get("optimizer_kwargs", {}))
    return values


class _Job:
    """The ranks of one trial: started, served (rank 0's evaluations), watched, and ended."""

    def __init__(self, folder: Path, ranks: int, on_eval: Callable[[EvalPoint], Any] | None) -> None:
        self.folder, self.ranks, self.on_eval = folder, ranks, on_eval
        self.procs: list[subprocess.Popen] = []
        self.tails: list[collections.deque[str]] = [collections.deque(maxlen=40) for _ in range(ranks)]
        self.pumps: list[threading.Thread] = []
        self.exited: dict[int, tuple[int, float]] = {}  # rank -> (return code, when it was seen)
        self.evaluations: int | None = None  # rank 0 -> here
        self.answers: int | None = None  # here -> rank 0
        self.buffer = b""
        self.store: Any = None

    def start(self) -> None:
        import lrkit

        # the store the ranks meet at: bound here on a free port, so no port can be taken in between
        self.store = torch.distributed.TCPStore("127.0.0.1", 0, is_master=True, wait_for_workers=False)
        source = os.path.dirname(os.path.dirname(os.path.abspath(lrkit.__file__)))
        env = {**os.environ, RANK_ENV: "1", "WORLD_SIZE": str(self.ranks), "LOCAL_WORLD_SIZE": str(self.ranks),
               "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(self.store.port), "LRKIT_PARENT_PID": str(os.getpid()),
               "PYTHONPATH": os.pathsep.join([source, *filter(None, [os.environ.get("PYTHONPATH")])])}
        child_ends: tuple[int, ...] = ()
        if self.on_eval is not None:
            self.evaluations, to_parent = os.pipe()
            from_parent, self.answers = os.pipe()
            child_ends = (from_parent, to_parent)
        try:
            for rank in range(self.ranks):
                own = child_ends if rank == 0 else ()
                rank_env = {**env, "RANK": str(rank), "LOCAL_RANK": str(rank),
                            **({CHANNEL_ENV: ",".join(map(str, own))} if own else {})}
                proc = subprocess.Popen([sys.executable, "-m", "lrkit.lrbench.run.ranks", str(self.folder)],
                                        env=rank_env, stdin=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                        pass_fds=own, start_new_session=True)
                self.procs.append(proc)
                pump = threading.Thread(target=_pump, args=(proc.stderr, rank, self.tails[rank]), daemon=True)
                pump.start()
                self.pumps.append(pump)
        finally:
            for fd in child_ends:
                os.close(fd)

    def wait(self) -> None:
        """Serve rank 0 until every rank has exited; RankFailed at the first failure."""
        failed_at = None
        while True:
            self._serve(0.05)
            now = time.monotonic()
            for rank, proc in enumerate(self.procs):
                if rank not in self.exited and (code := proc.poll()) is not None:
                    self.exited[rank] = (code, now)
            failures = {r: e for r, e in self.exited.items() if e[0] != 0}
            if failures:
                failed_at = failed_at or now
                if len(self.exited) == self.ranks or now - failed_at > SETTLE_SECONDS:
                    raise self._failure(failures)
            elif len(self.exited) == self.ranks:
                if not (self.folder / "result.pkl").exists():
                    raise RankFailed("rank 0 of the trial exited without writing its result", 0, 0)
                return
            elif self.exited and now - min(t for _, t in self.exited.values()) > FINISH_SECONDS:
                running = [r for r in range(self.ranks) if r not in self.exited]
                raise RankFailed(f"rank {running[0]} of the trial's {self.ranks} processes was still running "
                                 f"{FINISH_SECONDS:g} s after rank {min(self.exited)} had returned: every rank must "
                                 "stop at the same update (report, and stop, on every rank)", running[0], 0)

    def _serve(self, timeout: float) -> None:
        """Answer rank 0's evaluations with ``on_eval`` (an exception of ``on_eval`` ends the trial)."""
        if self.evaluations is None:
            time.sleep(timeout)
            return
        if not select.select([self.evaluations], [], [], timeout)[0]:
            return
        data = os.read(self.evaluations, 1 << 16)
        if not data:  # rank 0 has exited
            os.close(self.evaluations)
            self.evaluations = None
            return
        self.buffer += data
        while b"\n" in self.buffer:
            line, _, self.buffer = self.buffer.partition(b"\n")
            stop = bool(self.on_eval(EvalPoint(**json.loads(line))))  # type: ignore[misc]
            try:
                os.write(self.answers, b"1\n" if stop else b"0\n")  # type: ignore[arg-type]
            except BrokenPipeError:
                pass  # rank 0 is gone: wait() says why

    def _failure(self, failures: dict[int, tuple[int, float]]) -> LRKitError:
        """The error of the rank that failed first: one that died without a word (a signal, ``os._exit``)
        before one that raised, before one whose collective failed because another had gone."""
        errors = {r: _read_error(self.folder, r) for r in failures}

        def cause(rank: int) -> tuple[int, float, int]:
            error, seen = errors[rank], failures[rank][1]
            if error is None:
                return 0, seen, rank
            return 3 if error["after_rank0"] else 2 if error["peer_gone"] else 1, error["time"], rank

        rank = min(failures, key=cause)
        code, error = failures[rank][0], errors[rank]
        head = f"rank {rank} of the trial's {self.ranks} processes"
        returned = sorted(r for r, (c, _) in self.exited.items() if c == 0)
        note = (f" (rank {', '.join(map(str, returned))} had returned without an error before: every rank must stop "
                "at the same update)" if returned else "")
        if error is None:
            how = f"was killed by {_signal_name(-code)}" if code < 0 else f"exited with code {code}"
            tail = "".join(self.tails[rank]).rstrip()
            return RankFailed(f"{head} {how}; the other ranks were stopped{note}" +
                              (f". The end of its stderr:\n{tail}" if tail else " (it wrote nothing on stderr)"),
                              rank, code)
        if error["protocol"]:
            return ProtocolError(f"{head}: {error['message']}")
        if error["lrkit"]:
            return RankFailed(f"{head} failed: {error['message']}{note}", rank, code)
        return RankFailed(f"{head} failed: {error['type']}: {error['message']}{note}\n\nIts traceback:\n"
                          f"{error['traceback'].rstrip()}", rank, code)

    def end(self) -> None:
        """Kill every rank's process group (a no-op for those that are gone) and reap them."""
        for proc in self.procs:
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
        for proc in self.procs:
            proc.wait()
        for pump in self.pumps:
            pump.join(timeout=2.0)
        for fd in (self.evaluations, self.answers):
            if fd is not None:
                os.close(fd)
        self.evaluations = self.answers = None
        self.store = None


def _pump(stream: Any, rank: int, tail: collections.deque[str]) -> None:
    """Copy a rank's stderr here, line by line behind ``[rank N]``, keeping its last lines."""
    with stream:
        for raw in iter(stream.readline, b""):
            line = raw.decode(errors="replace")
            tail.append(line)
            try:
                sys.stderr.write(f"[rank {rank}] {line}")
                sys.stderr.flush()
            except (OSError, ValueError):
                pass


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"


def _read_error(folder: Path, rank: int) -> dict[str, Any] | None:
    try:
        return json.loads((folder / f"error-{rank}.json").read_text())
    except (OSError, ValueError):
        return None


# ---- a rank ----------------------------------------------------------------------------------------------


__all__ = ["CHANNEL_ENV", "RANK_ENV", "RankFailed", "run_ranks", "task_reference"]
