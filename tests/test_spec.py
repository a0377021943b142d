"""The spec parser and formatter: round trips, errors that point at the problem, no evaluation."""

from __future__ import annotations

import dataclasses
import pickle

import pytest

import lrkit
from examples import EXAMPLES
from lrkit.errors import PolicyError, SpecError
from lrkit.policies import Policy


@pytest.mark.parametrize("text", EXAMPLES)
def test_spec_dict_pickle_round_trip(text):
    policy = lrkit.parse(text)
    assert lrkit.parse(policy.spec()) == policy
    assert lrkit.parse(policy.spec()).spec() == policy.spec()
    assert lrkit.from_dict(policy.to_dict()) == policy
    again = pickle.loads(pickle.dumps(policy))
    assert again == policy and hash(again) == hash(policy)


def test_positional_and_keyword_arguments_mean_the_same():
    assert lrkit.parse("TRI(0.001, 0.006, 2000)") == lrkit.parse("TRI(k0=0.001, k1=0.006, l=2000)")


def test_bare_words_true_false_none_and_quoted_strings():
    p = lrkit.parse("clip(FIX(k0=0.1), min_lr=0, max_lr=none)")
    assert p.max_lr is None and p(3) == 0.1


@pytest.mark.parametrize(
    "text, fragment",
    [
        ("TRI(k0=0.01, k1=0.001, l=5)", "`k1 >= k0` must hold, but got (k0=0.01, k1=0.001)"),
        ("TIR(k0=1, k1=2, l=3)", "did you mean 'TRI'"),
        ("TRI(k0=1, k1=2, l=3", "expected ','"),
        ("TRI(k0=1, k1=2, l=3, q=4)", "TRI has no parameter 'q'"),
        ("TRI(k0=1, k1=2)", "TRI needs 'l'"),
        ("TRI(k0=1, k0=1, k1=2, l=3)", "given twice"),
        ('__import__("os").system("true")', "unexpected character '.'"),
        ('__import__("os")', "unknown policy '__import__'"),
        ("FIX(k0=inf)", "FIX: `k0` must be a finite number, but got (k0=inf)."),
        ("FIX(k0=1e999)", "FIX: `k0` must be a finite number, but got (k0=1e999)."),
        ("nan", "nan is not a finite number"),
        ('FIX(k0="a")', "`k0` must be a finite number"),
        ("FIX(k0=true)", "`k0` must be a finite number"),
        ("", "the spec is empty"),
        ("0.1", "expected a policy"),
        ("FIX(k0=1) FIX(k0=2)", "after the end of the policy"),
        ("join([FIX(k0=1), FIX(k0=2)], boundaries=[0])", "0 < b_1 < b_2"),
        ("join([FIX(k0=1), FIX(k0=2)], boundaries=[5, 9])", "len(boundaries) == len(policies) - 1"),
        ("sequence([FIX(k0=1)], fractions=[0.5], total_steps=10)", "sum(fractions) == 1"),
        ("warmup(FIX(k0=1), steps=2.5)", "`steps` must be an integer"),
        ("scale(policy=3, factor=2)", "`policy` must be a policy"),
    ],
)
def test_bad_specs_raise_spec_error_naming_the_problem(text, fragment):
    with pytest.raises(SpecError) as info:
        lrkit.parse(text)
    assert fragment in str(info.value)
    assert isinstance(info.value, ValueError)


def test_error_caret_points_at_the_offending_token():
    with pytest.raises(SpecError) as info:
        lrkit.parse("join([FIX(k0=1), FIXX(k0=2)], boundaries=[5])")
    assert info.value.position == "join([FIX(k0=1), ".__len__()


@pytest.mark.parametrize("text, marked", [
    ("TRI(k0=0.1, k1=0.2, l=-5)", ["l=-5"]),                       # the argument that breaks `l > 0`
    ("TRI(0.1, 0.2, -5)", ["-5"]),                                 # positional arguments too
    ("TRI(k0=0.3, k1=0.2, l=5)", ["k0=0.3", "k1=0.2"]),            # a rule on two arguments marks both
    ("TRI(k0=0.1, k1=0.2, x=5)", ["x=5"]),                         # an unknown parameter
    ("TRI(k0=0.1, k1=oops, l=5)", ["k1=oops"]),                    # a value of the wrong type
    ("warmup(TRI(k0=0.1, k1=0.2, l=-5), steps=3)", ["l=-5"]),      # inside a nested policy
    ("warmup(FIX(k0=0.1), steps=0)", ["steps=0"]),
    ("cosine(max_lr=0.1)", ["cosine"]),                            # nothing written to point at: the name
    ("FIX(k0=nan)", ["k0=nan"]),                                   # a non-finite number, as any bad argument
    ("TRI(0.1, 0.2, inf)", ["inf"]),
    ("join([FIX(k0=1), FIX(k0=2)], boundaries=[NaN])", ["boundaries="]),
])
def test_a_rule_violation_points_at_the_offending_argument(text, marked):
    with pytest.raises(SpecError) as info:
        lrkit.parse(text)
    assert info.value.positions == tuple(text.index(m) for m in marked)
    assert info.value.position == info.value.positions[0]
    caret = str(info.value).splitlines()[-1]
    assert caret == "  " + "".join("^" if i in info.value.positions else " " for i in range(len(caret) - 2))


def test_policy_errors_name_the_fields_their_rule_was_checked_on():
    from lrkit.policies.cyclic import TRI

    with pytest.raises(PolicyError) as info:
        TRI(k0=0.3, k1=0.2, l=5)
    assert info.value.fields == ("k0", "k1")
    with pytest.raises(PolicyError) as info:
        TRI(k0=0.1, k1="x", l=5)
    assert info.value.fields == ("k1",)


@dataclasses.dataclass(frozen=True, repr=False)
class Labelled(Policy):
    """A policy with a free string parameter (none in the catalogue has one); registered per test."""

    name = "labelled_demo"
    label: str

    def _lr(self, t):
        return 0.1 + 0 * t


def test_a_string_equal_to_a_reserved_word_round_trips_in_quotes(monkeypatch):
    from lrkit.policies import base

    monkeypatch.setitem(base._REGISTRY, Labelled.name, Labelled)
    for word in (*base.SPEC_KEYWORDS, *base.NON_FINITE_WORDS, "cos", "two words", 'q"uote'):
        policy = Labelled(label=word)
        assert lrkit.parse(policy.spec()) == policy, policy.spec()
    assert Labelled(label="NaN").spec() == 'labelled_demo(label="NaN")'
    assert Labelled(label="cos").spec() == "labelled_demo(label=cos)"


def test_constructor_errors_are_policy_errors():
    from lrkit.policies.cyclic import TRI

    with pytest.raises(PolicyError, match=r"TRI: `l > 0` must hold, but got \(l=0\)"):
        TRI(k0=0.1, k1=0.2, l=0)


@pytest.mark.parametrize("text, message", [
    ("FIX(k0=nan)", "FIX: `k0` must be a finite number, but got (k0=nan)."),
    ("FIX(Infinity)", "FIX: `k0` must be a finite number, but got (k0=Infinity)."),   # positional: named too
    ("TRI(k0=0.1, k1=0.2, l=1e999)", "TRI: `l` must be a finite number, but got (l=1e999)."),
    ("warmup(FIX(k0=inf), steps=3)", "FIX: `k0` must be a finite number, but got (k0=inf)."),
    ("join([FIX(k0=1), FIX(k0=2)], boundaries=[nan])",
     "join: `boundaries[0]` must be a finite number, but got (boundaries[0]=nan)."),
])
def test_a_non_finite_number_names_its_parameter(text, message):
    with pytest.raises(SpecError) as info:
        lrkit.parse(text)
    assert str(info.value).splitlines()[0] == message


@pytest.mark.parametrize("text, message", [
    # a float field shows an integer as written, not as 5.0; lists as [..], not Python tuples
    ("TRI(k0=0.1, k1=0.2, l=-5)", "TRI: `l > 0` must hold, but got (l=-5)."),
    ("join([FIX(k0=0.1)], [5])",
     "join: `len(boundaries) == len(policies) - 1` must hold, but got (policies=[FIX(k0=0.1)], boundaries=[5])."),
    ("join([FIX(k0=1), FIX(k0=2), FIX(k0=3)], boundaries=[7.5, 3])", "(boundaries=[7.5, 3])."),
    ("FIX(k0=true)", "FIX: `k0` must be a finite number, but got (k0=true)."),
    ('FIX(k0="a")', "FIX: `k0` must be a finite number, but got (k0='a')."),
])
def test_rule_errors_show_values_as_a_spec_writes_them(text, message):
    with pytest.raises(SpecError) as info:
        lrkit.parse(text)
    assert str(info.value).splitlines()[0].endswith(message)


def test_deep_nesting_is_refused_cleanly():
    text = "scale(" * 100 + "FIX(k0=1)" + ", factor=1)" * 100
    with pytest.raises(SpecError, match="nests deeper"):
        lrkit.parse(text)


def test_from_dict_rejects_non_dicts_and_unknown_names():
    with pytest.raises(SpecError):
        lrkit.from_dict({"k0": 1})
    with pytest.raises(SpecError, match="did you mean 'FIX'"):
        lrkit.from_dict({"name": "FIXX", "k0": 1})


@pytest.mark.parametrize(
    "make",
    [
        lambda: lrkit.parse("FIX(k0=1" + "0" * 400 + ")"),
        lambda: lrkit.from_dict({"name": "cosine", "max_lr": 0.1, "total_steps": 10**400}),
        lambda: lrkit.parse("FIX(k0=0.1)")(10**400),
        lambda: lrkit.parse("FIX(k0=0.1)").values([10**400]),
        lambda: lrkit.parse("FIX(k0=0.1)").values([True]),
        lambda: lrkit.parse("FIX(k0=0.1)").values(["1"]),
        lambda: lrkit.parse("FIX(k0=0.1)").values(None),
    ],
)
def test_numbers_past_float64_and_non_numbers_are_lrkit_errors_not_crashes(make):
    with pytest.raises(lrkit.LRKitError):
        make()


def test_values_accepts_every_numeric_array_kind():
    import numpy as np

    p = lrkit.parse("TRI(k0=0.001, k1=0.006, l=2000)")
    expected = [p(0), p(1), p(2)]
    for steps in ([0, 1, 2], np.arange(3, dtype=np.uint64), np.arange(3, dtype=np.int32), np.arange(3.0)):
        assert p.values(steps).tolist() == expected
    assert p.values([[0, 1], [2, 0]]).shape == (2, 2)
    assert p.values([]).shape == (0,)


# ---- numbers: ASCII digits only, any length, in linear time ---------------------------------------
@pytest.mark.parametrize("text, fragment", [
    ("FIX(k0=١.٥)", "unexpected character '١' (numbers are written with the digits 0-9)"),  # Arabic-Indic 1.5
    ("FIX(k0=１)", "unexpected character '１'"),                                              # a fullwidth 1
    ("FIX(k0=1١)", "'1١' is not a number"),
    ("FIX(k0=1.5.3)", "'1.5.3' is not a number"),
    ("FIX(k0=1e)", "'1e' is not a number"),
    ("FIX(k0=1e+)", "'1e+' is not a number"),
    ("FIX(k0=1e5x)", "'1e5x' is not a number"),
    ("FIX(k0=1_000)", "'1_000' is not a number"),
    ("FIX(k0=0x10)", "'0x10' is not a number"),
])
def test_only_ascii_digits_make_numbers(text, fragment):
    with pytest.raises(SpecError) as info:
        lrkit.parse(text)
    assert fragment in str(info.value)
    assert info.value.position == text.index("=") + 1


def test_integers_of_any_length_are_spec_errors_naming_the_parameter():
    # int() refuses strings past 4300 digits with a plain ValueError; the parser never gets there
    for digits in (4300, 4301, 50_000):
        with pytest.raises(SpecError) as info:
            lrkit.parse(f"wsd(max_lr=0.1, warmup_steps={'1' * digits}, stable_steps=1, decay_steps=1)")
        first = str(info.value).splitlines()[0]
        assert first == f"wsd: `warmup_steps` must be a finite number, but got (warmup_steps=11111111111111111111..." \
                        f"11111111 ({digits} characters))."
    # leading zeros do not count: the value is what matters
    assert lrkit.parse(f"warmup(FIX(k0=0.1), steps={'0' * 5000}7)").steps == 7
    assert lrkit.parse(f"FIX(k0=-{'0' * 5000})").k0 == 0
    assert lrkit.parse(f"FIX(k0=0.{'0' * 5000}1e5000)").k0 == 0.1


def _parse_seconds(text: str) -> float:
    import time

    best = float("inf")
    for _ in range(5):
        start = time.perf_counter()
        with pytest.raises(SpecError):
            lrkit.parse(text)
        best = min(best, time.perf_counter() - start)
    return best


@pytest.mark.parametrize("make", [
    lambda n: "FIX(k0=" + "1" * n + "x)",      # the case: the number pattern retried every split
    lambda n: "FIX(k0=" + "1" * n + ".1.)",
    lambda n: "FIX(k0=1" + "e" * n + ")",
    lambda n: 'FIX(k0="' + "a" * n + ")",       # an unterminated string
    lambda n: "FIX(k0=" + "1" * n + ")",        # past float64: refused by value
])
def test_a_long_number_is_read_in_linear_time(make):
    # a quadratic tokenizer takes 16x as long for 4x the length (1.3 s at 8000 digits before the fix)
    small, large = _parse_seconds(make(4000)), _parse_seconds(make(16000))
    assert large < 0.05
    assert large < 8 * max(small, 1e-4), (small, large)


def test_from_dict_refuses_deep_nesting_cleanly():
    data = {"name": "FIX", "k0": 0.1}
    for _ in range(63):
        data = {"name": "scale", "policy": data, "factor": 1}
    assert lrkit.from_dict(data)(0) == 0.1
    for _ in range(5000):  # a RecursionError before
        data = {"name": "scale", "policy": data, "factor": 1}
    with pytest.raises(SpecError, match="nests deeper than 64 levels"):
        lrkit.from_dict(data)
