"""lrkit.text: the one helper per job for text (did-you-mean, tables, wrapping, escaping, the terminal)."""

from __future__ import annotations

import io

import pytest

from lrkit import text


@pytest.mark.parametrize(("word", "choices", "expected"), [
    ("TIR", ["TRI", "SIN", "COS"], "TRI"),            # a transposition, over the cutoff
    ("adamm", ["sgd", "adam", "adamw"], "adam"),
    ("Fix", ["FIX", "STEP"], "FIX"),                 # case only (difflib's ratio is 1/3)
    ("lenet", ["fashion-mnist-lenet", "digits-mlp"], "fashion-mnist-lenet"),  # the only name with that part
    ("mlp", ["fashion-mnist-mlp", "digits-mlp"], None),  # a part of two names: no guess
    ("zzzz", ["TRI", "SIN"], None),
    ("x", [], None),
])
def test_closest(word, choices, expected):
    assert text.closest(word, choices) == expected
    assert text.closest(word, iter(choices)) == expected  # any iterable, read once


def test_one_cutoff_decides_what_is_close():
    import difflib

    assert difflib.SequenceMatcher(None, "abcd", "abxy").ratio() == text.SUGGEST_CUTOFF
    assert text.closest("abcd", ["abxy"]) == "abxy"  # at the cutoff: suggested
    assert text.closest("abcde", ["abxyz"]) is None  # 0.4: not


def test_did_you_mean_ends_a_message():
    assert text.did_you_mean("TIR", ["TRI"]) == "; did you mean 'TRI'?"
    assert text.did_you_mean("zzz", ["TRI"]) == ""
    hint = "; `lrkit policies` lists them"
    assert text.did_you_mean("zzz", ["TRI"], otherwise=hint) == hint


def test_table_aligns_columns_by_their_widest_cell():
    assert text.table(["a", "bb"], [["ccc", "d"], ["e", "ffff"]]).splitlines() == ["a    bb", "ccc  d", "e    ffff"]
    assert text.table(None, [["x", "", ""], ["yy", "z"]]).splitlines() == ["x", "yy  z"]  # no trailing spaces
    assert text.table(None, []) == ""
    assert text.table(None, [["a", "b", "c"]], widths=(3, 4)) == "a    b     c"  # at least the given widths
    assert text.table(None, [["abcd", "b"]], widths=(2,)) == "abcd  b"  # a wider cell wins


def test_wrap_breaks_at_spaces_and_indents_later_lines():
    lines = text.wrap("TRI(k0=0.001, k1=0.006, l=2000)", 15, indent="  ")
    assert lines == ["TRI(k0=0.001,", "  k1=0.006,", "  l=2000)"]
    assert text.wrap("a-b-c-d", 3) == ["a-b", "-c-", "d"]  # hyphens are not break points; a long word is cut
    assert text.wrap("", 10) == [""]
    assert all(len(line) <= 7 for line in text.wrap("lorem ipsum dolor sit amet", 7))


def test_escape():
    assert text.escape('<a href="x">&\'') == "&lt;a href=&quot;x&quot;&gt;&amp;&#x27;"
    assert text.escape(3) == "3"


class _Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_is_terminal():
    assert text.is_terminal(_Tty())
    assert not text.is_terminal(io.StringIO())
    closed = io.StringIO()
    closed.close()
    assert not text.is_terminal(closed)  # isatty raises ValueError
    assert not text.is_terminal(object())  # no isatty at all


def test_terminal_width(monkeypatch):
    monkeypatch.setenv("COLUMNS", "73")
    assert text.terminal_width(io.StringIO(), default=100) == 73
    monkeypatch.setenv("COLUMNS", "0")
    assert text.terminal_width(io.StringIO(), default=100) == 100
    monkeypatch.setenv("COLUMNS", "wide")
    assert text.terminal_width(io.StringIO()) is None
    monkeypatch.setattr("shutil.get_terminal_size", lambda fallback: __import__("os").terminal_size((55, 20)))
    assert text.terminal_width(_Tty(), default=100) == 55
