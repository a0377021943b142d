"""``lrkit policies / show / plot / simulate``: output content, exit codes, no torch import."""

from __future__ import annotations

import csv
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


def test_policies_lists_every_name_with_parameters_and_formula(capsys):
    code, out, _ = run(capsys, "policies")
    assert code == 0
    lines = out.splitlines()
    assert lines[0].split() == ["NAME", "PARAMETERS", "FORMULA"]
    for name, cls in lrkit.policies().items():
        row = next((line for line in lines if line.split()[0] == name), None)
        assert row is not None, f"{name} missing from `lrkit policies`"
        assert cls.formula and cls.formula[:20] in row
    warmup = next(line for line in lines if line.startswith("warmup "))
    assert "policy, steps, start_lr=0.0" in warmup  # defaults shown after '='
    assert f"{len(lrkit.policies())} policies" in out


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
    out_file = tmp_path / "sub" / "lr.png"
    code, out, _ = run(capsys, "plot", TRI, SEQ, "--steps", "3000", "-o", str(out_file), "--log-y")
    assert code == 0 and str(out_file) in out
    assert out_file.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_plot_policies_library_call(tmp_path):
    from lrkit.plotting import plot_policies, plot_steps

    path = plot_policies([TRI, lrkit.parse(SEQ)], 50_000, tmp_path / "x.png", labels=["a", "b"], title="t")
    assert path.stat().st_size > 1000
    assert plot_steps(10).tolist() == list(range(10)) and plot_steps(10**6).size <= 20_000
    with pytest.raises(lrkit.LRKitError, match="len"):
        plot_policies([TRI], 10, tmp_path / "y.png", labels=["a", "b"])
    with pytest.raises(lrkit.LRKitError, match="steps > 0"):
        plot_policies([TRI], 0, tmp_path / "y.png")


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
    from lrkit.cli import policy_cmds

    monkeypatch.setattr(policy_cmds, "EXACT_LIMIT", 1000)
    monkeypatch.setattr(policy_cmds, "SAMPLES", 101)
    monkeypatch.setattr(policy_cmds, "_CHUNK", 7)  # several chunks: the running min/max must carry over
    lo, hi, exact = policy_cmds.extremes(lrkit.parse("TRI(k0=0.001, k1=0.006, l=500)"), 10_001)
    assert not exact and lo == (0.001, 0) and hi == (0.006, 500)  # samples every 100 steps
    lo, hi, exact = policy_cmds.extremes(lrkit.parse("TRI(k0=0.001, k1=0.006, l=50)"), 1000)
    assert exact and lo == (0.001, 0) and hi == (0.006, 50)
    code, out, _ = run(capsys, "show", "FIX(k0=0.1)", "--steps", "5000")
    assert code == 0 and "(over 101 evenly spaced steps of 0..4999)" in out


def test_show_and_simulate_every_example(capsys):
    from examples import EXAMPLES

    for spec in EXAMPLES:
        code, out, err = run(capsys, "show", spec, "--steps", "3001")
        assert code == 0 and err == "" and out.splitlines()[0] == lrkit.parse(spec).spec(), spec
        assert run(capsys, "simulate", spec, "--steps", "3001", "--every", "1000")[1].count("\n") == 5, spec
