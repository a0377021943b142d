"""A trial that outgrows one process: a task with ``ranks > 1`` trains as a data-parallel job of that many processes.

:func:`run_trial` hands such a trial to :func:`run_ranks`, which starts ``ranks`` fresh Pythons
(``python -m lrkit.lrbench.run.ranks FOLDER``, rank ``r`` with ``RANK``/``LOCAL_RANK``/``WORLD_SIZE`` set and
``cuda:r`` on CUDA) and waits for them. Each rank joins one process group (gloo on CPU, NCCL on CUDA)
through a store this process holds, loads the training function again from its reference, and calls the
runner's one-process trial (``_train``: same seed, same policy, same :class:`~lrkit.lrbench.run.protocol.Run`)
on it. The search never sees ranks: it gets one :class:`TrialResult`, and its ``on_eval`` answers here.

- **One judge.** At every ``run.report(...)`` the ranks average their training losses, rank 0 judges
  (target, divergence, the pruner, the unreachable rule) and broadcasts its metrics and decision; every
  rank records the same point and stops at the same update. Report on every rank (rank 0's metrics count:
  compute them there or all-reduce them); ``run.stop()`` too is a decision every rank must take.
- **One voice to the storage.** Rank 0's evaluations reach this process's ``on_eval`` (the search's
  pruner) through a pipe, one JSON line each; the answer (stop or not) goes back before rank 0 broadcasts
  its decision. Rank 0 writes the result to a file this process reads back; no rank talks to a storage.
- **A rank that dies fails the trial.** A rank killed, exiting or raising ends every rank at once (their
  process groups are killed) and :func:`run_ranks` raises :class:`RankFailed` naming the rank and why
  (its error and traceback, or its signal and the end of its stderr); a rank's ``ProtocolError`` comes
  back as one. A study stores the trial FAIL and goes on. Ctrl-C here, or this process's death, ends the
  ranks too; nothing is left running.

Each rank's stderr is copied to this process's, line by line, behind ``[rank N]``. The result is rank 0's
(its curve holds the losses averaged over the ranks; ``keep_losses`` keeps rank 0's own). lrkit sets the
process group up before the training function runs: it must not call ``init_process_group`` itself.
This module knows nothing of the runner: :func:`run_trial` hands it the function that trains one trial
in one process, and every rank gets it by reference (pickled, as ``multiprocessing`` passes a target).

Two sides: :mod:`~lrkit.lrbench.run.ranks.launch` (this process: start the ranks, serve rank 0, watch,
diagnose) and :mod:`~lrkit.lrbench.run.ranks.rank` (each rank: join, train under one judge, report back).
"""

from lrkit.lrbench.run.ranks.launch import RankFailed, run_ranks, task_reference
from lrkit.lrbench.run.ranks.rank import RankRun, main

__all__ = ["RankFailed", "RankRun", "main", "run_ranks", "task_reference"]
