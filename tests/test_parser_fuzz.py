"""Fuzzing the spec parser: any text parses or raises SpecError; generated specs round-trip.

Valid specs are grown from the example registry: a leaf from examples.EXAMPLES with some
parameters redrawn at random (kept only if the policy accepts them), wrapped in random
combinators and in the examples' own wrappers (plugins included), nested a few levels deep.

The structured fuzz at the end (tests/spec_fuzz.py, from a fixed seed) builds hostile specs from the
registry's real names and parameters and holds every one to the contract: refused with an
``LRKitError`` or accepted with finite LRs >= 0, no other exception or warning, each parse and
evaluation under 0.1 s. ``benchmarks/fuzz_specs.py`` runs the same generator at length.
"""

from __future__ import annotations

import builtins
import contextlib
import dataclasses
import json
import math
import pickle
import typing

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import lrkit
from examples import EXAMPLES
from lrkit.policies import Policy, aliases
from lrkit.policies.base import _field_types

FAST = settings(deadline=None, max_examples=250, suppress_health_check=[HealthCheck.too_slow])


# ---- arbitrary text -------------------------------------------------------------------------
def _fields() -> list[str]:
    return sorted({f.name for cls in lrkit.policies().values() for f in dataclasses.fields(cls)})


TOKENS = st.sampled_from(
    [*lrkit.policies(), *aliases(), *_fields(), "(", ")", "[", "]", ",", "=", " ", "'", '"', "\\",
     "0", "1", "-1", "0.5", "1e-3", "1e308", "-0", ".5", "1e999", "inf", "nan", "true", "none", "cos",
     "__import__('os')", "lambda: 0", "#", ";", "\n", "é", "\x00"])
GRAMMARISH = st.lists(TOKENS, max_size=40).map("".join)


@contextlib.contextmanager
def no_eval():
    """Fail loudly if parsing ever reaches eval/exec/compile."""
    def refuse(*args, **kwargs):
        raise AssertionError("the spec parser must never evaluate code")

    saved = {name: getattr(builtins, name) for name in ("eval", "exec", "compile")}
    for name in saved:
        setattr(builtins, name, refuse)
    try:
        yield
    finally:
        for name, fn in saved.items():
            setattr(builtins, name, fn)


def _parses_or_spec_error(text: str) -> None:
    try:
        with no_eval():
            policy = lrkit.parse(text)
    except lrkit.SpecError as err:
        assert str(err)
        return
    assert isinstance(policy, Policy)
    assert lrkit.parse(policy.spec()) == policy


@FAST
@given(text=st.one_of(st.text(max_size=80), GRAMMARISH))
def test_any_text_parses_or_raises_spec_error(text):
    _parses_or_spec_error(text)


@FAST
@given(data=st.data())
def test_examples_with_one_token_mutated(data):
    text = data.draw(st.sampled_from(EXAMPLES))
    at = data.draw(st.integers(0, len(text)))
    cut = data.draw(st.integers(0, 4))
    insert = data.draw(st.one_of(TOKENS, st.text(max_size=3)))
    _parses_or_spec_error(text[:at] + insert + text[at + cut:])


def test_code_is_never_run():
    for text in ["__import__('os').system('echo hi')", "FIX(k0=__import__('os'))", "FIX(k0=1+1)",
                 "FIX(k0=(lambda: 1)())", "exec('1')"]:
        with pytest.raises(lrkit.SpecError), no_eval():
            lrkit.parse(text)


# ---- generated valid specs ------------------------------------------------------------------
def _nodes(policy: Policy) -> list[Policy]:
    found = [policy]
    for value in policy.params().values():
        for item in value if isinstance(value, tuple) else (value,):
            if isinstance(item, Policy):
                found += _nodes(item)
    return found


ALL_NODES = [node for text in EXAMPLES for node in _nodes(lrkit.parse(text))]
LEAVES = [n for n in ALL_NODES if not any(
    isinstance(v, Policy) or (isinstance(v, tuple) and any(isinstance(x, Policy) for x in v))
    for v in n.params().values())]
# wrappers with exactly one policy field (warmup, scale, clip, ralr, ...), taken from the examples
WRAPPERS = [n for n in ALL_NODES if sum(isinstance(v, Policy) for v in n.params().values()) == 1]

FLOATS = st.one_of(st.sampled_from([0.0, 1e-6, 0.001, 0.01, 0.1, 0.5, 0.9, 1.0, 2.0, 100.0]),
                   st.floats(-1.0, 1e4, allow_nan=False, allow_infinity=False))


def _random_value(hint: typing.Any) -> st.SearchStrategy | None:
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if hint is float:
        return FLOATS
    if hint is int:
        return st.integers(-2, 10**6)
    if hint is bool:
        return st.booleans()
    if origin in (typing.Union, getattr(__import__("types"), "UnionType")) and type(None) in args:
        inner = _random_value(next(a for a in args if a is not type(None)))
        return None if inner is None else st.one_of(st.none(), inner)
    return None  # strings, lists: keep the example's (their valid choices are policy-specific)


def _try(build: typing.Callable[[], Policy], fallback: Policy) -> Policy:
    try:
        return build()
    except lrkit.PolicyError:
        return fallback


@st.composite
def leaves(draw) -> Policy:
    base = draw(st.sampled_from(LEAVES))
    hints = _field_types(type(base))
    changes = {}
    for field in dataclasses.fields(base):
        strategy = _random_value(hints[field.name])
        if strategy is not None and draw(st.booleans()):
            changes[field.name] = draw(strategy)
    return _try(lambda: dataclasses.replace(base, **changes), base)


def _combinators(children: st.SearchStrategy) -> st.SearchStrategy:
    @st.composite
    def join(draw):
        ps = draw(st.lists(children, min_size=1, max_size=3))
        gaps = draw(st.lists(st.integers(1, 5000), min_size=len(ps) - 1, max_size=len(ps) - 1))
        bounds = [sum(gaps[: i + 1]) for i in range(len(gaps))]
        return _cls("join")(policies=ps, boundaries=bounds)

    @st.composite
    def sequence(draw):
        ps = draw(st.lists(children, min_size=1, max_size=3))
        weights = draw(st.lists(st.integers(1, 8), min_size=len(ps), max_size=len(ps)))
        fractions = [w / sum(weights) for w in weights]
        fractions[-1] = 1.0 - math.fsum(fractions[:-1])
        total = draw(st.integers(10 * len(ps), 10**6))
        fallback = ps[0]
        return _try(lambda: _cls("sequence")(policies=ps, fractions=fractions, total_steps=total), fallback)

    @st.composite
    def wrapped(draw):
        child = draw(children)
        kind = draw(st.sampled_from(["warmup", "scale", "clip", "example"]))
        if kind == "warmup":
            return _cls("warmup")(policy=child, steps=draw(st.integers(1, 10**5)),
                                  start_lr=draw(st.floats(0, 1)))
        if kind == "scale":
            return _cls("scale")(policy=child, factor=draw(st.floats(0, 100)))
        if kind == "clip":
            low = draw(st.floats(0, 1))
            high = draw(st.one_of(st.none(), st.floats(low, low + 1)))
            return _cls("clip")(policy=child, min_lr=low, max_lr=high)
        outer = draw(st.sampled_from(WRAPPERS)) if WRAPPERS else None
        if outer is None:
            return child
        field = next(k for k, v in outer.params().items() if isinstance(v, Policy))
        return _try(lambda: dataclasses.replace(outer, **{field: child}), child)

    return st.one_of(join(), sequence(), wrapped())


def _cls(name: str) -> type[Policy]:
    return lrkit.policies()[name]


POLICIES = st.recursive(leaves(), _combinators, max_leaves=8)


@settings(deadline=None, max_examples=200, suppress_health_check=[HealthCheck.too_slow])
@given(policy=POLICIES)
def test_generated_specs_round_trip(policy):
    text = policy.spec()
    again = lrkit.parse(text)
    assert again == policy and again.spec() == text
    data = policy.to_dict()
    assert lrkit.from_dict(json.loads(json.dumps(data))) == policy
    assert pickle.loads(pickle.dumps(policy)) == policy
    assert hash(again) == hash(policy)


def test_the_generator_has_leaves_and_wrappers():
    assert LEAVES
    assert {"warmup", "scale", "clip"} <= {w.name for w in WRAPPERS}


# ---- the structured fuzz (tests/spec_fuzz.py) -------------------------------------------------
def test_hostile_specs_are_refused_cleanly_or_give_finite_lrs_quickly():
    from spec_fuzz import check, hostile_specs

    outcomes = [check(text) for text in hostile_specs(seed=2024, count=3000)]
    problems = [f"{o.problem}\n    {o.text[:300]}" for o in outcomes if o.problem]
    assert not problems, f"{len(problems)} failures, e.g.\n" + "\n".join(problems[:10])
    slow = [(o.parse_s + o.eval_s, o.text[:200]) for o in outcomes if o.parse_s + o.eval_s > 0.1]
    assert not slow, f"{len(slow)} inputs over 0.1 s, e.g. {max(slow)}"
    # the generator reaches both sides of the contract, and the hostile corners
    accepted = [o for o in outcomes if o.accepted]
    assert 300 < len(accepted) < 2700, len(accepted)
    texts = " ".join(o.text for o in outcomes)
    for corner in ("1" * 4301, "١", "1e999", "nan", "1e308", "5e-324"):
        assert corner in texts, corner
    assert any(o.text.count("(") > 64 for o in outcomes)          # past the depth limit
    assert any(60 <= o.text.count("(") <= 64 and o.accepted for o in outcomes)  # at it, and evaluated


def test_the_structured_fuzz_would_catch_what_it_looks_for(monkeypatch):
    # its checks fail on the failures the issue found (a check that cannot fail proves nothing)
    import warnings

    import numpy as np
    from spec_fuzz import check

    assert check("FIX(k0=0.1)").problem is None and check("FIX(k0=0.1)").accepted
    assert check("FIX(k0=-1)").problem is None and not check("FIX(k0=-1)").accepted

    def overflow(text):
        raise OverflowError("int too large to convert to float")

    class Stub:
        """A policy that gives ``value`` after ``before()`` (no real policy can be this broken any more)."""

        def __init__(self, value, before=lambda: None):
            self.value, self.before = value, before

        def values(self, steps):
            self.before()
            return np.full(np.shape(steps), self.value)

        def __call__(self, t):
            return self.value

    monkeypatch.setattr(lrkit, "parse", overflow)
    assert check("FIX(k0=0.1)").problem.startswith("other: parse: OverflowError")
    monkeypatch.setattr(lrkit, "parse", lambda text: Stub(np.inf))
    assert check("FIX(k0=0.1)").problem.startswith("non-finite")
    monkeypatch.setattr(lrkit, "parse", lambda text: Stub(-0.1))
    assert check("FIX(k0=0.1)").problem.startswith("non-finite")
    warn = lambda: warnings.warn("overflow encountered in multiply", RuntimeWarning)  # noqa: E731
    monkeypatch.setattr(lrkit, "parse", lambda text: Stub(0.1, warn))
    assert check("FIX(k0=0.1)").problem.startswith("other: evaluation: RuntimeWarning")
