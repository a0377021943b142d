"""A structured fuzzer for specs: hostile inputs built from the registry's real names and parameters.

Shared by ``tests/test_parser_fuzz.py`` (a few thousand inputs, in CI) and
``benchmarks/fuzz_specs.py`` (the long run). :func:`hostile_specs` yields spec strings from a fixed
seed: every registered policy with its own parameter names, each value drawn from a pool that mixes
ordinary values with hostile ones (huge, tiny, negative, ``inf``/``nan``, thousands of digits,
unicode digits, malformed numbers), nested up to and past the parser's depth limit, and some of them
truncated or mutated. :func:`check` parses one, evaluates what is accepted, and says what went wrong:

- ``"other"``: an exception that is not :class:`lrkit.LRKitError` (or a warning, turned into one);
- ``"non-finite"``: an accepted spec with an LR that is not finite or is negative at some step;
- the parse and evaluation times, which the callers hold to their limits.
"""

from __future__ import annotations

import dataclasses
import random
import time
import typing
import warnings
from typing import Any, Iterator, NamedTuple

import numpy as np

import lrkit
from lrkit.policies import Policy
from lrkit.policies.base import _field_types

#: steps every accepted spec is evaluated at (vectorised), 0, 1 and 10**9 included
STEPS = np.array([0, 1, 2, 3, 10, 99, 100, 101, 255, 1000, 4321, 10**5, 10**6, 10**7 + 3, 10**9 - 1, 10**9],
                 dtype=np.float64)
#: steps also evaluated one by one (the scalar path)
SCALAR_STEPS = (0, 1, 7, 10**9)

ORDINARY = ["0", "1", "2", "0.1", "0.01", "0.001", "1e-4", "0.5", "0.9", "0.99", "0.9999", "10", "100", "1000",
            "5000", "20000", "3", "0.3", "1.5"]
HOSTILE = ["1e308", "1.7976931348623157e308", "-1e308", "1e-308", "5e-324", "1e-310", "2.2250738585072014e-308",
           "-1", "-0", "-0.0", "-1e-300", "inf", "-inf", "nan", "NaN", "Infinity", "1e999", "-1e999", "1e-999",
           "10" + "0" * 307, "9" * 308, "9" * 309, "1" + "0" * 400, "0" * 500 + "1", "1." + "0" * 600 + "1",
           "1" * 4300, "1" * 4301, "1" * 5000, "1" * 16000 + "x", "0." + "0" * 330 + "1", "1e+308", "1e-4000",
           "١.٥", "١", "１", "²", "٣e٢", "1_000", "0x10", "1e", "1e+", ".", "+", "1.5.3", "1..", "+1", "++1", "1e5x",
           "true", "none", '"1"', "[1]", "[]", "[" * 70 + "]" * 70, "cos", "2**64", str(2**64), str(2**64 - 1),
           str(2**53 + 1), "1e16", "1e300", "1e-300", "4e-320"]
WORDS = ["cos", "linear", "cosine", "sqrt", "interval", "factor", "val_loss", "val_acc", "rel", "abs", "x", "",
         "true", "false", "none", "1-sqrt"]
#: combinators that take one child, with the rest of their arguments
WRAPS = {
    "warmup": ["steps=10", "steps=1", "steps=1000, start_lr=0.5", "steps=1000, start_lr=1e308",
               f"steps={10**308}", "steps=3, start_lr=1e-310"],
    "scale": ["factor=0.5", "factor=10", "factor=1e300", "factor=0", "factor=1e-300", "factor=1.7976931348623157e308"],
    "clip": ["min_lr=0.001", "max_lr=0.05", "min_lr=1e308", "min_lr=0, max_lr=1e308", "max_lr=none"],
    "ralr": ["iters_per_epoch=1", "iters_per_epoch=10, p=1", "iters_per_epoch=1, p=1, draw=factor, max_factor=1e308",
             "iters_per_epoch=3, p=0.5, max_lr=1e308", f"iters_per_epoch={10**308}, p=1",
             "iters_per_epoch=1, p=1, total_steps=1000, final_fraction=0.5, seed=18446744073709551615"],
    "join": ["boundaries=[]"],  # wrapped as join([child, ...], ...) below
    "sequence": [],
    "plateau": [],
}


def _number(rng: random.Random) -> str:
    return rng.choice(ORDINARY) if rng.random() < 0.75 else rng.choice(HOSTILE)


def _integer(rng: random.Random) -> str:
    pool = ["0", "1", "2", "10", "100", "1000", "20000", "-1", str(10**308), str(10**308 // 3), "9" * 308,
            str(2**63), str(2**64), str(2**53), "1" * 4301, "1.5", "1e3", "1e308"]
    return rng.choice(pool) if rng.random() < 0.5 else rng.choice(ORDINARY + HOSTILE)


def _value(rng: random.Random, hint: Any, depth: int) -> str:
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if type(None) in args:
        if rng.random() < 0.2:
            return "none"
        hint = next(a for a in args if a is not type(None))
        origin, args = typing.get_origin(hint), typing.get_args(hint)
    if hint is float:
        return _number(rng)
    if hint is int:
        return _integer(rng)
    if hint is bool:
        return rng.choice(["true", "false", "1", "none"])
    if hint is str:
        return rng.choice(WORDS)
    if isinstance(hint, type) and issubclass(hint, Policy):
        return policy_text(rng, depth + 1)
    if origin is tuple:
        n = rng.choice([0, 1, 1, 2, 3])
        if isinstance(args[0], type) and issubclass(args[0], Policy):
            return "[" + ", ".join(policy_text(rng, depth + 1) for _ in range(n)) + "]"
        if rng.random() < 0.5:  # increasing, as boundaries must be
            items, at = [], 0.0
            for _ in range(n):
                at += float(rng.choice(["1", "10", "100", "1000", "1e300", "0.5"]))
                items.append(repr(at) if at < 1e308 else rng.choice(HOSTILE))
            return "[" + ", ".join(items) + "]"
        return "[" + ", ".join(_number(rng) for _ in range(n)) + "]"
    return _number(rng)


def policy_text(rng: random.Random, depth: int = 0) -> str:
    """A spec of a random registered policy with its own parameter names and hostile values."""
    names = sorted(lrkit.policies())
    if depth >= 3:  # keep generated trees small; deep chains come from deep_chain()
        names = [n for n in names if n not in WRAPS]
    cls = lrkit.policies()[rng.choice(names)]
    hints = _field_types(cls)
    parts = []
    for field in dataclasses.fields(cls):
        optional = field.default is not dataclasses.MISSING
        if optional and rng.random() < 0.5:
            continue
        if not optional and rng.random() < 0.02:
            continue  # a missing argument
        parts.append(f"{field.name}={_value(rng, hints[field.name], depth)}")
    if rng.random() < 0.02:
        parts.append(f"{rng.choice(['x', 'k0', 'policy', 'l'])}={_number(rng)}")  # unknown or repeated
    return f"{cls.name}({', '.join(parts)})"


def deep_chain(rng: random.Random, depth: int, kind: str | None = None) -> str:
    """``depth`` combinators around a leaf (each of one kind, or mixed)."""
    text = rng.choice(["FIX(k0=0.1)", "cosine(max_lr=0.1, total_steps=1000)", "EXP(k0=0.1, gamma=0.999)",
                       "TRI(k0=0.001, k1=0.006, l=20)"])
    for _ in range(depth):
        wrap = kind or rng.choice(list(WRAPS))
        if wrap == "join":
            text = f"join([{text}, FIX(k0=0.01)], boundaries=[{rng.choice([1, 100, 5000])}])"
        elif wrap == "sequence":
            text = f"sequence([FIX(k0=0.01), {text}], fractions=[0.25, 0.75], total_steps={rng.choice([4, 1000])})"
        elif wrap == "plateau":
            text = f"plateau([FIX(k0=0.01), {text}], patience=1, monitor=val_loss, switched_at=[{rng.choice([1, 50])}])"
        else:
            text = f"{wrap}({text}, {rng.choice(WRAPS[wrap] or [''])})"
    return text


def hostile_specs(seed: int, count: int) -> Iterator[str]:
    """``count`` spec strings from ``seed``: structured, deeply nested, truncated or mutated."""
    rng = random.Random(seed)
    for _ in range(count):
        roll = rng.random()
        if roll < 0.08:
            kind = rng.choice([None, None, "warmup", "ralr", "scale", "clip", "join"])  # mixed, or one kind
            text = deep_chain(rng, rng.choice([8, 20, 31, 32, 60, 63, 64, 65, 80]), kind)
        else:
            text = policy_text(rng)
        roll = rng.random()
        if roll < 0.08:
            text = text[:rng.randrange(len(text) + 1)]  # truncated
        elif roll < 0.14:
            at = rng.randrange(len(text) + 1)
            text = text[:at] + rng.choice(["(", ")", ",", "=", "[", "]", "1", "e", ".", "-", "١", " ", '"', "\\",
                                           "\x00", "é"]) + text[at + rng.randrange(3):]
        yield text


class Outcome(NamedTuple):
    text: str
    accepted: bool
    problem: str | None  # None: fine; else "other: ...", "non-finite: ..."
    parse_s: float
    eval_s: float


def check(text: str) -> Outcome:
    """Parse ``text`` and evaluate what is accepted; any warning counts as an error."""
    start = time.process_time()
    parse_s = eval_s = 0.0
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        try:
            policy = lrkit.parse(text)
        except lrkit.LRKitError:
            return Outcome(text, False, None, time.process_time() - start, 0.0)
        except Exception as err:  # noqa: BLE001 - what the fuzzer looks for
            return Outcome(text, False, f"other: parse: {type(err).__name__}: {str(err)[:200]}",
                           time.process_time() - start, 0.0)
        parse_s = time.process_time() - start
        start = time.process_time()
        try:
            values = policy.values(STEPS)
            scalars = [policy(t) for t in SCALAR_STEPS]
        except Exception as err:  # noqa: BLE001 - an evaluation error is a bug whatever its class
            return Outcome(text, True, f"other: evaluation: {type(err).__name__}: {str(err)[:200]}",
                           parse_s, time.process_time() - start)
        eval_s = time.process_time() - start
    every = np.concatenate([values, scalars])
    if not (np.all(np.isfinite(every)) and np.all(every >= 0)):
        bad = STEPS[~(np.isfinite(values) & (values >= 0))][:3].tolist()
        return Outcome(text, True, f"non-finite: at steps {bad} (scalar {scalars})", parse_s, eval_s)
    return Outcome(text, True, None, parse_s, eval_s)
