"""``lrkit policies / show / plot / simulate``: output content, exit codes, no torch import."""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import subprocess
import sys
from pathlib import Path

import pytest

import lrkit
from lrkit.cli.main import main

ROOT = Path(__file__).resolve().parents[1]
TRI = "TRI(k0=0.001, k1=0.006, l=2000)"
SEQ = "sequence([FIX(k0=0.1), TRI(k0=0.01, k1=0.05, l=100)], fractions=[0.3, 0.7], total_steps=1000)"


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def policy_table(out: str) -> dict[str, tuple[str, str]]:
    """``lrkit policies``'s table read back: first word of the name cell -> (parameters, formula),
    each with its wrapped lines joined."""
    lines = out.split("\n\n")[0].splitlines()
    params_at, formula_at = lines[0].index("PARAMETERS"), lines[0].index("FORMULA")
    table: dict[str, list[list[str]]] = {}
    for line in lines[1:]:
        name = line[:params_at].strip()
        if name:
            current = table.setdefault(name.split()[0], [[], []])
        current[0].append(line[params_at:formula_at].strip())
        current[1].append(line[formula_at:].strip())
    return {name: (" ".join(filter(None, p)), " ".join(filter(None, f))) for name, (p, f) in table.items()}


def squeeze(text: str) -> str:
    return "".join(text.split())


def test_policies_lists_every_name_with_parameters_and_formula(capsys, monkeypatch):
    from lrkit.cli.policy_cmds import _signature

    monkeypatch.delenv("COLUMNS", raising=False)
    code, out, _ = run(capsys, "policies")
    assert code == 0
    assert out.splitlines()[0].split() == ["NAME", "PARAMETERS", "FORMULA"]
    table = policy_table(out)
    assert set(table) == set(lrkit.policies())
    for name, cls in lrkit.policies().items():
        params, formula = table[name]
        assert squeeze(params) == squeeze(_signature(cls)), name  # wrapped, never cut
        assert squeeze(formula) == squeeze(cls.formula), name
    assert table["warmup"][0] == "policy, steps, start_lr=0.0"  # defaults shown after '='
    assert f"{len(lrkit.policies())} policies" in out


@pytest.mark.parametrize("columns, terminal, limit", [(None, False, 100), ("60", False, 60), ("300", False, 300),
                                                      (None, True, 72)])
def test_policies_fits_the_terminal_or_100_columns(capsys, monkeypatch, columns, terminal, limit):
    import os
    import shutil

    if columns is None:
        monkeypatch.delenv("COLUMNS", raising=False)
    else:
        monkeypatch.setenv("COLUMNS", columns)
    if terminal:
        monkeypatch.setattr(sys.stdout, "isatty", lambda: True)
        monkeypatch.setattr(shutil, "get_terminal_size", lambda fallback=None: os.terminal_size((72, 24)))
    code, out, _ = run(capsys, "policies")
    assert code == 0
    widest = max(len(line) for line in out.splitlines())
    rows = len(out.split("\n\n")[0].splitlines()) - 1
    if limit < 300:
        assert limit - 20 < widest <= limit and rows > len(lrkit.policies())  # wrapped, using the room it has
    else:
        assert widest < limit and rows == len(lrkit.policies())  # wide enough: one line per policy
    table = policy_table(out)
    assert squeeze(table["onecycle"][1]) == squeeze(lrkit.policies()["onecycle"].formula)


def test_policies_shows_aliases(capsys):
    from lrkit.policies import aliases

    _, out, _ = run(capsys, "policies")
    for alias, name in aliases().items():
        assert any(line.startswith(name + " ") and alias in line for line in out.splitlines()), alias


def test_policies_name_prints_the_docstring(capsys):
    code, out, _ = run(capsys, "policies", "warmup")
    assert code == 0
    assert out.startswith("warmup(policy, steps, start_lr=0.0)")
    assert "Linear warm-up" in out and "Args:" in out
    code, _, err = run(capsys, "policies", "TRIANGLE")
    assert code == 2 and "unknown policy 'TRIANGLE'" in err


def test_show_gives_notable_steps_and_extremes(capsys):
    code, out, _ = run(capsys, "show", f"warmup({SEQ}, steps=50)", "--steps", "1200")
    assert code == 0
    policy = lrkit.parse(f"warmup({SEQ}, steps=50)")
    assert out.splitlines()[0] == policy.spec()
    rows = {int(line.split()[0]): line for line in out.splitlines()[2:] if line.split()[0].isdigit()}
    # 0, warm-up end 50, segment start 50 + 300, quarter points 300/600/900, last 1199
    assert sorted(rows) == [0, 50, 300, 350, 600, 900, 1199]
    assert "warm-up ends" in rows[50] and "segment 2 starts" in rows[350] and "last" in rows[1199]
    for t, line in rows.items():
        assert float(line.split()[1]) == pytest.approx(policy(t), rel=1e-5)
    assert out.splitlines()[-1] == "min 0 at step 0; max 0.1 at step 50 (over steps 0..1199)"


def test_show_of_a_plain_policy(capsys):
    code, out, _ = run(capsys, "show", TRI, "--steps", "4000")
    assert code == 0
    steps = [int(line.split()[0]) for line in out.splitlines()[2:-1]]
    assert steps == [0, 1000, 2000, 3000, 3999]
    assert "max 0.006 at step 2000" in out and "min 0.001 at step 0" in out


def test_simulate_csv_matches_values(capsys):
    code, out, _ = run(capsys, "simulate", TRI, "--steps", "10000", "--every", "250")
    assert code == 0
    rows = list(csv.DictReader(io.StringIO(out)))
    steps = [int(r["step"]) for r in rows]
    assert steps == list(range(0, 10000, 250))
    assert [float(r["lr"]) for r in rows] == lrkit.parse(TRI).values(steps).tolist()  # full precision


def test_simulate_json(capsys):
    code, out, _ = run(capsys, "simulate", SEQ, "--steps", "5", "--format", "json")
    assert code == 0
    data = json.loads(out)
    assert data == {"spec": lrkit.parse(SEQ).spec(), "step": [0, 1, 2, 3, 4], "lr": [0.1] * 5}


def test_plot_writes_a_png_with_several_curves(capsys, tmp_path):
    out_file = tmp_path / "lr.png"
    code, out, _ = run(capsys, "plot", TRI, SEQ, "--steps", "3000", "-o", str(out_file), "--log-y")
    assert code == 0 and out == f"wrote {out_file}\n"
    assert out_file.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_plot_log_y_of_a_policy_with_no_positive_lr_is_refused_before_drawing(capsys, tmp_path, recwarn):
    out_file = tmp_path / "zero.png"
    code, out, err = run(capsys, "plot", "FIX(k0=0)", "--steps", "100", "-o", str(out_file), "--log-y")
    assert code == 2 and out == "" and not out_file.exists()
    assert err == ("lrkit plot: error: `--log-y` needs LRs > 0 to draw, but FIX(k0=0) is 0 or less at every "
                   "step of 0..99; draw it without --log-y.\n")
    assert not [w for w in recwarn if "positive" in str(w.message)]


def test_plot_output_rules(capsys, tmp_path):
    # no suffix: a PNG, and the message names the file written
    code, out, _ = run(capsys, "plot", TRI, "--steps", "100", "-o", str(tmp_path / "lr"))
    assert code == 0 and out == f"wrote {tmp_path / 'lr.png'}\n"
    assert (tmp_path / "lr.png").read_bytes()[:4] == b"\x89PNG" and not (tmp_path / "lr").exists()
    # an existing file is kept unless --force
    before = (tmp_path / "lr.png").read_bytes()
    code, out, err = run(capsys, "plot", "FIX(k0=0.1)", "--steps", "100", "-o", str(tmp_path / "lr.png"))
    assert code == 2 and out == "" and "already exists" in err and "--force" in err and "Traceback" not in err
    assert (tmp_path / "lr.png").read_bytes() == before
    code, out, _ = run(capsys, "plot", "FIX(k0=0.1)", "--steps", "100", "-o", str(tmp_path / "lr.png"), "--force")
    assert code == 0 and (tmp_path / "lr.png").read_bytes() != before
    # an unknown format: the formats matplotlib can write, no traceback, no file
    code, _, err = run(capsys, "plot", TRI, "--steps", "100", "-o", str(tmp_path / "lr.jpgx"))
    assert code == 2 and "Traceback" not in err and "`-o` must end in one of" in err
    assert ".png" in err and ".svg" in err and ".pdf" in err and "lr.jpgx" in err
    assert not (tmp_path / "lr.jpgx").exists()
    # a missing folder is not created
    code, _, err = run(capsys, "plot", TRI, "--steps", "100", "-o", str(tmp_path / "nope" / "dir" / "lr.png"))
    assert code == 2 and "does not exist" in err and not (tmp_path / "nope").exists()
    # other formats follow the suffix
    code, _, _ = run(capsys, "plot", TRI, "--steps", "100", "-o", str(tmp_path / "lr.SVG"))
    assert code == 0 and b"<svg" in (tmp_path / "lr.SVG").read_bytes()[:400]


def test_plot_policies_library_call(tmp_path):
    from lrkit.plotting import plot_policies, plot_steps

    path = plot_policies([TRI, lrkit.parse(SEQ)], 50_000, tmp_path / "x.png", labels=["a", "b"], title="t")
    assert path.stat().st_size > 1000
    assert plot_steps(10).tolist() == list(range(10)) and plot_steps(10**6).size <= 20_000
    with pytest.raises(lrkit.LRKitError, match="len"):
        plot_policies([TRI], 10, tmp_path / "y.png", labels=["a", "b"])
    with pytest.raises(lrkit.LRKitError, match="steps > 0"):
        plot_policies([TRI], 0, tmp_path / "y.png")
    # from Python a rerun replaces its file (like savefig); overwrite=False refuses and keeps it
    first = path.read_bytes()
    assert plot_policies([TRI], 100, path) == path and path.read_bytes() != first
    again = path.read_bytes()
    with pytest.raises(lrkit.LRKitError, match="already exists"):
        plot_policies(["FIX(k0=1)"], 100, path, overwrite=False)
    assert path.read_bytes() == again
    assert plot_policies([TRI], 100, tmp_path / "z").name == "z.png"


@pytest.mark.parametrize("argv", [
    ["show", "TRI(k0=0.001, k1=0.006", "--steps", "10"],
    ["simulate", "TRI(k0=0.001, k1=0.0001, l=5)", "--steps", "10"],
    ["plot", TRI, "NOPE(x=1)", "--steps", "10", "-o", "never.png"],
])
def test_bad_specs_exit_2_with_the_caret_and_no_traceback(capsys, argv):
    code, out, err = run(capsys, *argv)
    assert code == 2 and out == ""
    assert err.startswith(f"lrkit {argv[0]}: error: ")
    assert "^" in err and "Traceback" not in err
    assert not Path("never.png").exists()


@pytest.mark.parametrize("argv", [["show", TRI, "--steps", "0"], ["simulate", TRI, "--steps", "5", "--every", "0"]])
def test_bad_step_counts_exit_2_with_usage(capsys, argv):
    code, _, err = run(capsys, *argv)
    assert code == 2 and "usage:" in err and "must hold" in err


def _python(code: str) -> str:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                          cwd=ROOT).stdout.strip()


def test_console_script_works_without_importing_torch():
    script = Path(sys.executable).parent / "lrkit"
    if not script.exists():
        pytest.skip(f"no console script next to {sys.executable}")
    done = subprocess.run([str(script), "policies"], capture_output=True, text=True, cwd=ROOT)
    assert done.returncode == 0 and "TRI" in done.stdout
    assert _python("import sys, lrkit; lrkit.parse('TRI(k0=0.001, k1=0.006, l=2000)'); "
                   "print('torch' in sys.modules)") == "False"
    assert _python("import sys, contextlib, io\nfrom lrkit.cli.main import main\n"
                   "with contextlib.redirect_stdout(io.StringIO()): code = main(['policies'])\n"
                   "print(code, 'torch' in sys.modules)") == "0 False"


def test_show_samples_min_and_max_beyond_the_exact_limit(capsys, monkeypatch):
    from lrkit.policies import summary

    monkeypatch.setattr(summary, "EXACT_LIMIT", 1000)
    monkeypatch.setattr(summary, "SAMPLES", 101)
    code, out, _ = run(capsys, "show", "FIX(k0=0.1)", "--steps", "5000")
    assert code == 0 and "(over 101 evenly spaced steps of 0..4999)" in out


def test_show_caret_points_at_the_argument_that_breaks_the_rule(capsys):
    code, out, err = run(capsys, "show", "TRI(k0=0.1, k1=0.2, l=-5)", "--steps", "100")
    assert code == 2 and out == ""
    assert err.splitlines()[1:] == ["  TRI(k0=0.1, k1=0.2, l=-5)", "                      ^"]


def test_show_and_simulate_every_example(capsys):
    from examples import EXAMPLES

    for spec in EXAMPLES:
        code, out, err = run(capsys, "show", spec, "--steps", "3001")
        assert code == 0 and err == "" and out.splitlines()[0] == lrkit.parse(spec).spec(), spec
        assert run(capsys, "simulate", spec, "--steps", "3001", "--every", "1000")[1].count("\n") == 5, spec


def test_every_choice_a_formula_names_is_accepted(capsys):
    """A formula that lists a parameter's choices (``decay=linear|cosine|sqrt``) lists values the parser takes."""
    import re

    from examples import EXAMPLES

    assert "decay=linear|cosine|sqrt" in lrkit.policies()["wsd"].formula
    example = {}
    for spec in EXAMPLES:
        example.setdefault(lrkit.parse(spec).name, lrkit.parse(spec))
    listed = 0
    for name, cls in lrkit.policies().items():
        for param, options in re.findall(r"(\w+)=(\w+(?:\|\w+)+)", cls.formula):
            for option in options.split("|"):
                listed += 1
                spec = dataclasses.replace(example[name], **{param: option}).spec()
                code, _, err = run(capsys, "show", spec, "--steps", "10")
                assert code == 0 and err == "", (name, option, err)
    assert listed >= 3


def test_a_spec_from_a_file_with_at(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "policy.txt").write_text(f"\n  {TRI}  \n")
    (tmp_path / "policy.json").write_text('{"name": "FIX", "k0": 0.2}')
    code, out, _ = run(capsys, "show", "@policy.txt", "--steps", "4000")
    assert code == 0 and out.startswith(lrkit.parse(TRI).spec())
    code, out, _ = run(capsys, "simulate", "@policy.json", "--steps", "2")
    assert code == 0 and out == "step,lr\n0,0.2\n1,0.2\n"
    code, _, err = run(capsys, "show", "@nope.txt", "--steps", "10")
    assert code == 2 and "SPEC @nope.txt: there is no file 'nope.txt'" in err
    (tmp_path / "empty.txt").write_text(" \n")
    code, _, err = run(capsys, "plot", "@empty.txt", "--steps", "10", "-o", "x.png")
    assert code == 2 and "the file 'empty.txt' is empty" in err and not (tmp_path / "x.png").exists()


def test_a_file_name_given_as_a_spec_gets_the_at_hint(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code, _, err = run(capsys, "show", "policy.txt", "--steps", "10")
    assert code == 2 and "unexpected character '.'" in err and "write @policy.txt" in err
    code, _, err = run(capsys, "verify", "--task", "digits-mlp", "--policy", "conf/policy.yaml")
    assert code == 2 and "to read a spec from a file, write --policy @conf/policy.yaml" in err
    code, _, err = run(capsys, "show", "FIX(k0=)", "--steps", "10")
    assert code == 2 and "@" not in err  # a spec with a typo is not taken for a file name
