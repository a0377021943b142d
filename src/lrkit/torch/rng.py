"""The counter-based generator of :mod:`lrkit.rng`, ported to torch so noise is made on the device.

torch has no uint64 arithmetic, but wrapping int64 multiplication and addition act on the same
bits, and a masked arithmetic shift is a logical one; so the 64-bit words here equal numpy's
bit for bit on any device. The Box–Muller transform runs in the requested float dtype.
"""

from __future__ import annotations

import math
from typing import Any

import torch

from lrkit import rng

_TWO64 = 1 << 64


def _s64(value: int) -> int:
    """An unsigned 64-bit constant as the int64 with the same bits (torch has no uint64 arithmetic)."""
    return value - _TWO64 if value >= 1 << 63 else value


_GOLDEN, _MIX1, _MIX2 = _s64(rng.GOLDEN), _s64(rng.MIX1), _s64(rng.MIX2)


_CHUNK = {"cpu": 1 << 16}  # pairs per pass: cache-sized on CPU, one big pass elsewhere
_CHUNK_DEVICE = 1 << 22


def normal(seed: int, step: int, start: int, n: int, device: Any = "cpu",
           dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """``lrkit.rng.normal(seed, step, range(start, start + n))`` computed by torch on ``device``.

    The 64-bit words are identical to numpy's; the Box–Muller transform runs in ``dtype``.
    Work goes in chunks through reused scratch buffers (fresh large temporaries are slow on CPU).
    """
    device = torch.device(device)
    out = torch.empty(n, device=device, dtype=dtype)
    key = _s64(rng.key(seed, step))
    first, pairs = start >> 1, ((start + n - 1) >> 1) - (start >> 1) + 1
    chunk = min(_CHUNK.get(device.type, _CHUNK_DEVICE), pairs)
    z, scratch = (torch.empty(chunk, device=device, dtype=torch.int64) for _ in range(2))
    radius, angle = (torch.empty(chunk, device=device, dtype=dtype) for _ in range(2))
    pair = torch.empty(chunk, 2, device=device, dtype=dtype)
    for c0 in range(0, pairs, chunk):
        m = min(chunk, pairs - c0)
        zz, tt, r, a, pp = z[:m], scratch[:m], radius[:m], angle[:m], pair[:m]
        torch.arange(first + c0 + 1, first + c0 + m + 1, out=zz)
        zz.mul_(_GOLDEN).add_(key)  # wrapping int64 arithmetic = uint64 arithmetic on the bits
        for shift, mult in ((30, _MIX1), (27, _MIX2), (31, None)):
            torch.bitwise_right_shift(zz, shift, out=tt)
            zz.bitwise_xor_(tt.bitwise_and_((1 << (64 - shift)) - 1))  # a logical shift
            if mult is not None:
                zz.mul_(mult)
        r.copy_(torch.bitwise_right_shift(zz, 32, out=tt).bitwise_and_(0xFFFFFFFF))
        r.add_(1.0).mul_(2.0**-32).log_().mul_(-2.0).sqrt_()
        a.copy_(zz.bitwise_and_(0xFFFFFFFF)).mul_(2.0**-32 * 2.0 * math.pi)
        torch.cos(a, out=pp[:, 0]).mul_(r)  # written straight into the interleaved pairs
        torch.sin(a, out=pp[:, 1]).mul_(r)
        # pair j holds elements 2j, 2j+1; keep those inside [start, start + n)
        lo = max(2 * (first + c0), start)
        hi = min(2 * (first + c0 + m), start + n)
        out[lo - start:hi - start].copy_(pp.view(-1)[lo - 2 * (first + c0):hi - 2 * (first + c0)])
    return out
