"""One rank of a multi-process trial (``python -m lrkit.lrbench.run.ranks FOLDER``): join the process group,
load the training function, train under the one judge rank 0 holds, and leave the result or the error
where the launching side (:mod:`lrkit.lrbench.run.ranks.launch`) reads it."""

from __future__ import annotations

import atexit
import dataclasses
import json
import math
import os
import pickle
import signal
import sys
import time
import traceback
from pathlib import Path
from typing import Any, Callable

import torch

from lrkit.errors import LRKitError
from lrkit.lrbench.run.protocol import ProtocolError, Run
from lrkit.lrbench.run.result import EvalPoint

from lrkit.lrbench.run.ranks.launch import CHANNEL_ENV

#: messages of a collective that failed because another rank went away
_PEER_GONE = ("Connection closed by peer", "Connection reset by peer", "Broken pipe", "remote worker crash",
              "NCCL communicator was aborted")


class RankRun(Run):
    """The :class:`~lrkit.lrbench.run.protocol.Run` a rank's training function gets: the same handle, and where it runs."""

    @property
    def rank(self) -> int:
        """This process's rank, 0 to ``world_size - 1`` (rank 0 judges and reports)."""
        return torch.distributed.get_rank()

    @property
    def world_size(self) -> int:
        """The trial's processes (``task.ranks``)."""
        return torch.distributed.get_world_size()

    @property
    def local_rank(self) -> int:
        """The rank on this machine (rank ``r`` trains on ``cuda:r``)."""
        return int(os.environ["LOCAL_RANK"])


# ---- this process: start the ranks, answer rank 0, collect the result ----------------------------------


class _RankZeroFailed(Exception):
    """Rank 0 failed while judging; the other ranks end quietly (rank 0's error is the trial's)."""


class _OneJudge:
    """Every rank's judge: the runner's own (``judge``), fed rank 0's metrics and overruled by rank 0's
    decision, so that every rank records the same curve, switches a plateau at the same update and stops
    at the same update."""

    def __init__(self, judge: Any, rank: int, world_size: int) -> None:
        self._judge, self._rank, self._world_size = judge, rank, world_size

    def __getattr__(self, name: str) -> Any:
        return getattr(self._judge, name)

    def record(self, step: int, values: dict[str, float], train_loss: float | None, first_loss: float,
               seconds: float) -> bool:
        dist, judge = torch.distributed, self._judge
        losses: list[Any] = [None] * self._world_size
        dist.all_gather_object(losses, (train_loss, first_loss))
        train_loss, first_loss = _mean(loss for loss, _ in losses), _mean(first for _, first in losses)
        if self._rank == 0:
            try:
                judge.record(step, values, train_loss, first_loss, seconds)  # on_eval asks this trial's parent
            except BaseException as err:
                dist.broadcast_object_list([("failed", f"{type(err).__name__}: {err}")], src=0)
                raise
        said = [("judged", values, train_loss, first_loss, judge.status, judge.reason, judge.stopped)
                if self._rank == 0 else None]
        dist.broadcast_object_list(said, src=0)
        if self._rank != 0:
            if said[0][0] == "failed":
                raise _RankZeroFailed(said[0][1])
            _, values, train_loss, first_loss, status, reason, stopped = said[0]
            judge.record(step, values, train_loss, first_loss, seconds)
            judge.status, judge.reason, judge.stopped = status, reason, stopped
        return judge.stopped


def _mean(values: Any) -> float | None:
    given = [v for v in values if v is not None]
    return math.fsum(given) / len(given) if given else None


class _ParentChannel:
    """Rank 0's ``on_eval``: the evaluation goes to the parent as one JSON line; "1" back means stop."""

    def __init__(self, fds: str) -> None:
        read_fd, write_fd = map(int, fds.split(","))
        self.answers, self.evaluations = os.fdopen(read_fd, "rb"), os.fdopen(write_fd, "wb")

    def __call__(self, point: EvalPoint) -> bool:
        self.evaluations.write(json.dumps(dataclasses.asdict(point)).encode() + b"\n")
        self.evaluations.flush()
        answer = self.answers.readline()
        if not answer:
            raise LRKitError("the process that started this trial closed its channel to rank 0")
        return answer.strip() == b"1"


def _ranked(train: Callable[[Any], None], rank: int, world_size: int) -> Callable[[Any], None]:
    """The training function as a rank calls it: with a :class:`RankRun` and the judge every rank shares."""

    def ranked(run: Run) -> None:
        if type(run) is Run:
            run.__class__ = RankRun  # the runner built a plain Run; this is the same object, with its rank
        run._judge = _OneJudge(run._judge, rank, world_size)
        train(run)

    return ranked


def _rank_main(folder: Path, rank: int) -> None:
    from lrkit.lrbench.tasks.catalogue import get_task

    trial = pickle.loads((folder / "trial.pkl").read_bytes())
    sys.path.extend(p for p in trial["sys_path"] if p not in sys.path)
    device, world_size = trial["devices"][rank], int(os.environ["WORLD_SIZE"])
    if device.startswith("cuda"):
        torch.cuda.set_device(device)
    elif trial["threads"] is not None:
        torch.set_num_threads(trial["threads"])
    dist = torch.distributed
    store = dist.TCPStore(os.environ["MASTER_ADDR"], int(os.environ["MASTER_PORT"]), is_master=False)
    dist.init_process_group(trial["backend"], store=store, rank=rank, world_size=world_size)
    loaded = get_task(trial["reference"])
    if loaded.train is None or getattr(loaded.train, "__qualname__", "") != trial["name"]:
        raise LRKitError(f"{trial['reference']!r} gives rank {rank} the training function "
                         f"{getattr(loaded.train, '__qualname__', None)!r}, not the trial's {trial['name']!r}")
    task = dataclasses.replace(loaded, **trial["task"])
    channel = os.environ.get(CHANNEL_ENV)
    settings = dataclasses.replace(trial["settings"], device=device,
                                   on_eval=_ParentChannel(channel) if rank == 0 and channel else None)
    result = trial["train_trial"](task, _ranked(task.train, rank, world_size), trial["policy"], trial["lrs"],
                                  settings, None, trial["keep_losses"])
    if rank == 0:
        partial = folder / "result.pkl.part"
        partial.write_bytes(pickle.dumps(result))
        partial.rename(folder / "result.pkl")
    dist.destroy_process_group()


def _die_with_parent() -> None:
    """Have Linux kill this rank when the process that started it dies (it may be killed without a word)."""
    try:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        return
    if str(os.getppid()) != os.environ.get("LRKIT_PARENT_PID"):
        os._exit(1)  # it died before the line above


def _write_error(folder: Path, rank: int, err: BaseException) -> None:
    message = str(err)
    error = {"rank": rank, "type": type(err).__name__, "message": message, "time": time.time(),
             "traceback": "".join(traceback.format_exception(type(err), err, err.__traceback__)),
             "peer_gone": isinstance(err, getattr(torch.distributed, "DistNetworkError", ())) or
             any(sign in message for sign in _PEER_GONE),
             "after_rank0": isinstance(err, _RankZeroFailed), "lrkit": isinstance(err, LRKitError),
             "protocol": isinstance(err, ProtocolError)}
    partial = folder / f"error-{rank}.json.part"
    partial.write_text(json.dumps(error))
    partial.rename(folder / f"error-{rank}.json")


def main(argv: list[str] | None = None) -> None:
    """A rank: ``python -m lrkit.lrbench.run.ranks FOLDER`` (started by :func:`run_ranks`)."""
    folder, rank = Path((sys.argv[1:] if argv is None else argv)[0]), int(os.environ["RANK"])
    _die_with_parent()
    try:
        _rank_main(folder, rank)
        code = 0
    except BaseException as err:  # noqa: BLE001 (any error of the rank is the trial's, told by the parent)
        _write_error(folder, rank, err)
        code = 1
    # the atexit functions run, then the process ends without tearing torch down (a second or two per rank)
    # and without waiting on a process group that another rank left
    atexit._run_exitfuncs()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


__all__ = ["RankRun", "main"]
