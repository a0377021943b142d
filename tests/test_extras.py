"""A missing optional dependency names the extra to install, from the command line and from ``lrkit.X``.

Each case runs in a fresh interpreter with the module hidden (``sys.modules[name] = None`` makes
every import of it fail as if it were not installed).
"""

from __future__ import annotations

import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from lrkit.extras import EXTRA_OF, MissingExtraError, missing_extra

ROOT = Path(__file__).resolve().parents[1]


def hidden(module: str, code: str, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    script = f"import sys\nsys.modules[{module!r}] = None\n" + textwrap.dedent(code)
    return subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=tmp_path, timeout=120)


def cli(module: str, argv: list[str], tmp_path: Path) -> subprocess.CompletedProcess[str]:
    return hidden(module, f"from lrkit.cli.main import main\nsys.exit(main({argv!r}))", tmp_path)


@pytest.mark.parametrize("module, argv, extra", [
    ("optuna", ["recommend", "--task", "digits-mlp", "--target", "0.9", "--budget", "100"], "bench"),
    ("torch", ["range-test", "--task", "digits-mlp", "--steps", "10"], "torch"),
    ("torch", ["tasks"], "torch"),
    ("matplotlib", ["plot", "FIX(k0=0.1)", "--steps", "10"], "plot"),
])
def test_a_command_names_the_extra_to_install(module, argv, extra, tmp_path):
    done = cli(module, argv, tmp_path)
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr
    last = done.stderr.strip().splitlines()[-1]
    assert re.fullmatch(f"lrkit {argv[0]}: error: (this command|plotting) needs {module}, which is not installed: "
                        f"pip install 'lrkit\\[{extra}\\]'", last), last
    assert list(tmp_path.iterdir()) == []  # nothing written


def test_debug_still_shows_the_traceback(tmp_path):
    done = cli("optuna", ["--debug", "recommend", "--task", "digits-mlp", "--target", "0.9", "--budget", "10"],
               tmp_path)
    assert done.returncode != 0 and "Traceback" in done.stderr and "ModuleNotFoundError" in done.stderr


def test_policy_commands_need_no_extra(tmp_path):
    code = ("for name in ('torch', 'matplotlib', 'optuna', 'sqlalchemy', 'tqdm', 'psycopg'):\n"
            "    sys.modules[name] = None\n"
            "from lrkit.cli.main import main\n"
            "sys.exit(max(main(['policies']), main(['show', 'FIX(k0=0.1)', '--steps', '5']),\n"
            "             main(['simulate', 'FIX(k0=0.1)', '--steps', '5'])))")
    done = hidden("torch", code, tmp_path)
    assert done.returncode == 0, done.stderr


@pytest.mark.parametrize("module, attribute, extra", [
    ("optuna", "recommend", "bench"),
    ("sqlalchemy", "recommend", "bench"),
    ("torch", "range_test", "torch"),
    ("torch", "verify", "torch"),
    ("torch", "Task", "torch"),
])
def test_a_lazy_attribute_names_the_extra_to_install(module, attribute, extra, tmp_path):
    done = hidden(module, f"""
        import lrkit
        try:
            lrkit.{attribute}
        except ImportError as err:
            print(type(err).__name__, isinstance(err, lrkit.LRKitError), err.name)
            print(err)
    """, tmp_path)
    assert done.returncode == 0, done.stderr
    kind, message = done.stdout.splitlines()
    assert kind == f"MissingExtraError True {module}"
    assert message == f"lrkit.{attribute} needs {module}, which is not installed: pip install 'lrkit[{extra}]'"


def test_only_known_extras_are_translated():
    assert missing_extra(ModuleNotFoundError("No module named 'mypkg'", name="mypkg")) is None
    err = missing_extra(ModuleNotFoundError("No module named 'matplotlib.backends'", name="matplotlib.backends"))
    assert isinstance(err, MissingExtraError) and isinstance(err, ModuleNotFoundError) and err.name == "matplotlib"
    assert "pip install 'lrkit[plot]'" in str(err)


def test_the_extras_named_exist_in_pyproject():
    import tomllib

    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    for module, extra in EXTRA_OF.items():
        requirements = " ".join(extras[extra]).replace("[binary]", "")
        assert module in requirements, (module, extra)
