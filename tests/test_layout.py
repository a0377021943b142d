"""The layering: every import between lrkit's modules goes one way (no circles), counting imports
inside functions and under ``TYPE_CHECKING``; the policy core and the output-path rule import
neither torch nor matplotlib."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"


def _modules() -> dict[str, Path]:
    found = {}
    for path in (SRC / "lrkit").rglob("*.py"):
        parts = path.relative_to(SRC).with_suffix("").parts
        found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return found


def import_graph() -> dict[str, set[str]]:
    """Module -> the lrkit modules it imports anywhere in its source (``from pkg import submodule``
    counts as importing the submodule, not the package)."""
    modules = _modules()
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        targets: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                targets |= {alias.name for alias in node.names}
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    parts = package.split(".")[:len(package.split(".")) - node.level + 1]
                    base = ".".join(parts + ([base] if base else []))
                subs = {f"{base}.{alias.name}" for alias in node.names if f"{base}.{alias.name}" in modules}
                targets |= subs if len(subs) == len(node.names) else {base} | subs
        graph[name] = {t for t in targets if t in modules and t != name}
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    cycles, state = [], {}

    def visit(node: str, path: list[str]) -> None:
        state[node] = "open"
        for nxt in sorted(graph[node]):
            if state.get(nxt) == "open":
                cycles.append(path[path.index(nxt):] + [nxt])
            elif nxt not in state:
                visit(nxt, path + [nxt])
        state[node] = "done"

    for node in sorted(graph):
        if node not in state:
            visit(node, [node])
    return cycles


def test_no_import_circles_between_lrkit_modules():
    assert _cycles(import_graph()) == []


def test_the_two_circles_issue_10_named_are_untied():
    graph = import_graph()
    assert "lrkit.spec" not in graph["lrkit.policies.base"]  # the formatter lives with the contract
    assert "lrkit.policies.base" in graph["lrkit.spec"]
    assert "lrkit.rangetest.result" not in graph["lrkit.rangetest.plot"]  # plot takes plain data
    assert "lrkit.rangetest.plot" in graph["lrkit.rangetest.result"]


def test_the_cycle_finder_finds_a_cycle():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c", "a"]]


def test_spec_formatting_is_still_importable_from_lrkit_spec():
    from lrkit.policies.base import format_spec as base_format
    from lrkit.spec import format_spec, to_dict

    assert format_spec is base_format and to_dict(lrkit_tri()) == {"name": "TRI", "k0": 0.1, "k1": 0.2, "l": 5.0}


def lrkit_tri():
    import lrkit

    return lrkit.parse("TRI(k0=0.1, k1=0.2, l=5)")


def test_output_path_and_the_policy_core_import_no_matplotlib_and_no_torch(tmp_path):
    code = ("import sys, lrkit, lrkit.plotting, lrkit.policies.summary, lrkit.extras, lrkit.progress\n"
            f"lrkit.plotting.output_path({str(tmp_path / 'x')!r}, '.html', ['.html'], overwrite=False)\n"
            "print(sorted(m for m in ('torch', 'matplotlib', 'optuna', 'tqdm') if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"


def test_every_stored_key_is_spelled_only_in_the_schema_module():
    # renaming a key must be one edit: a literal "lrkit_..." anywhere else would silently keep the old name
    import re

    schema = SRC / "lrkit" / "lrbench" / "study" / "schema.py"
    literal = re.compile(r"""["']lrkit_[a-z_]+["']""")
    found = {str(p.relative_to(SRC)): literal.findall(p.read_text())
             for p in (SRC / "lrkit").rglob("*.py") if p != schema and literal.search(p.read_text())}
    assert found == {}
    assert len(literal.findall(schema.read_text())) >= 30  # the keys are there (the search can fail)


#: LRBench's layers, in the order the data flows: a layer imports only from itself and the layers before it
LRBENCH_LAYERS = ("tasks", "run", "study", "search", "composition", "worker", "report")


def _lrbench_layer(module: str) -> int | None:
    parts = module.split(".")
    if parts[:2] != ["lrkit", "lrbench"] or len(parts) < 3:
        return None
    return LRBENCH_LAYERS.index(parts[2])


def test_lrbench_layers_import_only_downwards():
    upward = sorted(f"{name} -> {target}" for name, targets in import_graph().items()
                    if (layer := _lrbench_layer(name)) is not None
                    for target in targets if (_lrbench_layer(target) or 0) > layer)
    assert upward == []
    assert _lrbench_layer("lrkit.lrbench.report.page") > _lrbench_layer("lrkit.lrbench.run.runner")  # the rule can fail


def test_every_lrbench_module_sits_in_a_layer_folder_of_at_most_ten_modules():
    lrbench = SRC / "lrkit" / "lrbench"
    loose = sorted(p.name for p in lrbench.glob("*.py") if p.stem not in ("__init__", "worker"))
    assert loose == []
    sizes = {d.name: len([p for p in d.glob("*.py") if p.name != "__init__.py"]) for d in lrbench.iterdir() if d.is_dir()
             and (d / "__init__.py").exists()}
    assert set(sizes) == set(LRBENCH_LAYERS) - {"worker"}
    assert max(sizes.values()) <= 10, sizes


def test_the_run_layer_never_imports_optuna():
    run = SRC / "lrkit" / "lrbench" / "run"
    assert [p.name for p in run.glob("*.py") if "optuna" in p.read_text()] == []


def test_old_module_paths_import_with_a_warning_and_give_the_new_module():
    import importlib
    import pickle
    import warnings

    from lrkit._moved import MOVED

    for old, new in MOVED.items():
        sys.modules.pop(old, None)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            module = importlib.import_module(old)
        assert module is importlib.import_module(new), old
        assert any(issubclass(w.category, DeprecationWarning) and new in str(w.message) for w in caught), old
    # a pickle that names a class by its old module still loads
    from lrkit.lrbench.run.result import EvalPoint

    point = EvalPoint(step=5, lr=0.1, train_loss=2.0, test_loss=1.0, test_acc=0.5, seconds=1.0)
    old_pickle = pickle.dumps(point, protocol=0).replace(b"lrkit.lrbench.run.result", b"lrkit.lrbench.trial")
    assert b"lrkit.lrbench.trial" in old_pickle and pickle.loads(old_pickle) == point


def test_suggestions_and_terminal_checks_live_only_in_lrkit_text():
    # one "did you mean" (one cutoff) and one terminal check: a second copy would drift, as six did
    import re

    duplicate = re.compile(r"get_close_matches|\.isatty\(")
    text_module = SRC / "lrkit" / "text.py"
    found = sorted(str(p.relative_to(SRC)) for p in (SRC / "lrkit").rglob("*.py")
                   if p != text_module and duplicate.search(p.read_text()))
    assert found == []
    assert len(duplicate.findall(text_module.read_text())) == 2  # the search can fail


def test_no_package_exports_a_name_that_shadows_one_of_its_modules():
    # `from lrkit.lrbench.run import verify` must not mean the module here and the function there
    import importlib

    for path in (SRC / "lrkit").rglob("__init__.py"):
        package = ".".join(path.relative_to(SRC).parent.parts)
        modules = {p.stem for p in path.parent.glob("*.py")} | {p.name for p in path.parent.iterdir() if p.is_dir()}
        exported = set(getattr(importlib.import_module(package), "__all__", ()))
        known = {"policies"} if package == "lrkit" else set()  # lrkit.policies(), the registry, is public since 0.1
        assert exported & modules - known == set(), package


def test_every_name_a_module_exports_exists():
    # an __all__ naming something that moved away breaks `from module import *` only when someone tries it
    import importlib

    missing = {name: [n for n in getattr(module, "__all__", ()) if not hasattr(module, n)]
               for name in sorted(_modules()) if not name.startswith(("lrkit.torch.lightning", "lrkit.torch.hf"))
               for module in [importlib.import_module(name)]}
    assert {k: v for k, v in missing.items() if v} == {}


def test_an_old_module_path_never_shadows_an_entry_point_of_the_same_name():
    import importlib
    import warnings

    import lrkit.lrbench as lrbench

    for old in ("lrkit.lrbench.verify", "lrkit.lrbench.recommend", "lrkit.lrbench.compose", "lrkit.lrbench.training"):
        sys.modules.pop(old, None)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            module = importlib.import_module(old)
        assert sys.modules[old] is module  # the old path still imports
    from lrkit.lrbench import compose, recommend, task_defaults, verify

    assert all(callable(f) and not isinstance(f, type(lrbench)) for f in (compose, recommend, task_defaults, verify))
