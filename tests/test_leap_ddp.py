"""LEAP under DistributedDataParallel: replicas draw the same noise without communicating.

Two CPU processes (gloo) train one model on halves of the same global batches. DDP all-reduces
the gradients only; each rank draws its own LEAP noise. The replicas must end bit-identical, and
equal (to rounding) to one process training on the whole batches.
"""

from __future__ import annotations

import os
import socket

import pytest

torch = pytest.importorskip("torch")
dist = pytest.importorskip("torch.distributed")

from lrkit.torch import PolicyLR  # noqa: E402
from lrkit.torch.leap import LEAP  # noqa: E402

STEPS, BATCH = 8, 16
SPEC = "join([FIX(k0=0.1), FIX(k0=0.03)], boundaries=[5])"


def _model():
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(6, 8), torch.nn.Tanh(), torch.nn.Linear(8, 3))


def _batches():
    g = torch.Generator().manual_seed(1)
    return [(torch.randn(BATCH, 6, generator=g), torch.randint(0, 3, (BATCH,), generator=g)) for _ in range(STEPS)]


def _train(model, shard=slice(None)):
    opt = LEAP(torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=1e-3), sigma=0.3, seed=7)
    sched = PolicyLR(opt, SPEC)
    for x, y in _batches():
        opt.zero_grad()
        torch.nn.functional.cross_entropy(model(x[shard]), y[shard]).backward()
        opt.step()
        sched.step()
    return torch.cat([p.detach().reshape(-1) for p in model.parameters()])


def _worker(rank: int, world: int, port: int, out_dir: str) -> None:
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world)
    try:
        model = torch.nn.parallel.DistributedDataParallel(_model())
        torch.manual_seed(100 + rank)  # the global RNG differs per rank: LEAP must not depend on it
        half = BATCH // world
        flat = _train(model, slice(rank * half, (rank + 1) * half))
        torch.save(flat, os.path.join(out_dir, f"rank{rank}.pt"))
    finally:
        dist.destroy_process_group()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.skipif(not dist.is_available() or not dist.is_gloo_available(), reason="needs torch.distributed gloo")
@pytest.mark.timeout(120)
def test_ddp_replicas_end_identical_and_equal_a_single_process_run(tmp_path):
    torch.multiprocessing.spawn(_worker, args=(2, _free_port(), str(tmp_path)), nprocs=2, join=True)
    rank0, rank1 = (torch.load(tmp_path / f"rank{r}.pt") for r in (0, 1))
    assert torch.equal(rank0, rank1)
    torch.set_num_threads(1)
    single = _train(_model())
    torch.testing.assert_close(rank0, single, rtol=1e-5, atol=1e-6)
    assert not torch.equal(rank0, _model_params_after_plain_sgd())  # the noise did something


def _model_params_after_plain_sgd():
    model = _model()
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=1e-3)
    sched = PolicyLR(opt, SPEC)
    for x, y in _batches():
        opt.zero_grad()
        torch.nn.functional.cross_entropy(model(x), y).backward()
        opt.step()
        sched.step()
    return torch.cat([p.detach().reshape(-1) for p in model.parameters()])
