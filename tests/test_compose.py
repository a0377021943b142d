"""Composing a policy stage by stage: the tree, exact replay, resuming, forks, workers, report and lookup."""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
import threading
from pathlib import Path

import pytest
import test_workers  # noqa: F401  (imported here, not first in the composing thread: imports race in threads)

import lrkit.lrbench.composition.stage_trial as stage_trial
from lrkit.errors import LRKitError
from lrkit.lrbench.composition.stagewise import StageNode, compose, nodes_of, stage_boundaries
from lrkit.lrbench.report.page import render
from lrkit.lrbench.study.schema import ATTR_STATE_FILE
from lrkit.lrbench.study.storage import load_study, open_storage
from lrkit.lrbench.tasks.catalogue import get_task
from lrkit.lrbench.run.runner import run_trial

TESTS = Path(__file__).parent
ARGS = dict(target=0.995, budget=600, stages=3, candidates=3, beam=2, eval_every=50, lr_range=(0.02, 0.5),
            families=("fixed", "cosine", "clr", "step", "exponential"))


def _study(url):
    return load_study(open_storage(url), None)


def test_stage_boundaries() -> None:
    assert stage_boundaries(600, 3, 50) == [200, 400, 600]
    assert stage_boundaries(500, 4, 50) == [100, 250, 400, 500]
    assert stage_boundaries(600, 1, 50, [250]) == [250, 600]
    with pytest.raises(LRKitError, match="multiple of eval_every"):
        stage_boundaries(600, 1, 50, [275])


@pytest.fixture(scope="module")
def composed(tmp_path_factory):  # noqa: ANN201
    tmp = tmp_path_factory.mktemp("compose")
    url = f"sqlite:///{tmp / 'c.db'}"
    lines: list[str] = []
    result = compose("digits-mlp", storage=url, log=lines.append, **ARGS)
    return tmp, url, result, lines


def test_the_tree_forks_the_beam_at_every_boundary(composed) -> None:  # noqa: ANN001
    _, url, c, lines = composed
    stages = {n.stage for n in c.nodes}
    assert stages == {0, 1, 2}  # the target is out of reach: every stage ran
    by_stage = {s: [n for n in c.nodes if n.stage == s] for s in stages}
    assert len(by_stage[0]) == 3 and all(n.parent is None for n in by_stage[0])
    for s in (1, 2):
        parents = {n.parent for n in by_stage[s]}
        assert len(parents) == 2 and len(by_stage[s]) == 6  # beam 2 x 3 candidates
        best_before = sorted(by_stage[s - 1], key=StageNode.key)[:2]
        assert parents == {n.number for n in best_before}  # the beam is the best of the stage before
        assert {n.kind for n in by_stage[s]} == {"continue", "decay", "shrink"}
    assert [c.nodes[0].until, by_stage[1][0].until, by_stage[2][0].until] == [200, 400, 600]
    assert c.best is not None and c.chosen[-1] == c.best.number and len(c.chosen) == 3
    assert any("fork states:" in line and "MiB" in line for line in lines)


def test_the_composed_spec_replays_the_composition_bit_for_bit(composed) -> None:  # noqa: ANN001
    _, url, c, _ = composed
    study, config = _study(url)
    stored = study.get_trials()[c.best.number].user_attrs["lrkit_result"]["curve"]
    replay = run_trial(get_task("digits-mlp"), c.spec, budget=600, target=config.target, seed=0, on="val",
                       eval_every=50, stop_at_target=False, early_stop=False)
    assert len(stored) == len(replay.curve) == 12
    for a, b in zip(stored, replay.curve):
        assert (a["step"], a["train_loss"], a["val_loss"], a["test_acc"]) == (b.step, b.train_loss, b.val_loss,
                                                                               b.test_acc)
    args = shlex.split(c.rerun)
    assert args[:2] == ["lrkit", "verify"] and args[args.index("--policy") + 1] == c.spec


def test_fork_states_are_removed_at_the_end(composed) -> None:  # noqa: ANN001
    tmp, url, c, _ = composed
    assert not list(tmp.glob("c.db.states/**/*.pt"))
    study, _ = _study(url)
    assert all(t.user_attrs.get(ATTR_STATE_FILE) for t in study.get_trials())  # each trial saved one


def test_the_report_draws_the_tree_with_the_chosen_path(composed) -> None:  # noqa: ANN001
    _, url, c, _ = composed
    page = render(_study(url)[0])
    assert 'id="tree"' in page and page.count('class="chosen"') == len(c.chosen)
    assert page.count("<circle") == len(c.nodes) and "<script" not in page
    # every node is labelled, and labels are drawn over the edges with a halo (edges leave through them)
    assert page.count('class="label"') + page.count('class="chosen-label"') == len(c.nodes)
    assert page.index("<line x1") < page.index('class="label"') and "paint-order: stroke" in page


def test_a_killed_composition_continues_without_rerunning_a_finished_trial(tmp_path: Path, monkeypatch) -> None:
    url = f"sqlite:///{tmp_path / 'k.db'}"
    calls: list[int] = []
    killed: list[bool] = []
    real = stage_trial.run_stage_trial

    def counting(trial, *a, **kw):  # noqa: ANN001, ANN202
        calls.append(trial.number)
        if len(calls) == 5 and not killed:  # the second trial of stage 2
            killed.append(True)
            raise KeyboardInterrupt
        return real(trial, *a, **kw)

    monkeypatch.setattr(stage_trial, "run_stage_trial", counting)
    with pytest.raises(KeyboardInterrupt):
        compose("digits-mlp", storage=url, **ARGS)
    finished = {n.number for n in nodes_of(_study(url)[0])}
    assert len(finished) == 4
    # the fork states of stage 1 are gone too: the parents are replayed from scratch, exactly
    for f in (tmp_path / "k.db.states").glob("**/*.pt"):
        f.unlink()
    calls.clear()
    resumed = compose("digits-mlp", storage=url, **ARGS)
    assert not set(calls) & finished and len(calls) == 15 - 4  # the rest, the interrupted one again (once)
    fresh = compose("digits-mlp", storage=f"sqlite:///{tmp_path / 'fresh.db'}", **ARGS)
    assert resumed.spec == fresh.spec and resumed.best.val_acc == fresh.best.val_acc


def test_workers_run_a_compositions_stage_trials(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'w.db'}"
    env = {**__import__("os").environ, "PYTHONPATH": str(TESTS)}
    done: dict = {}
    args = dict(ARGS, stages=2, budget=200, candidates=3)
    def run() -> None:
        try:
            done["c"] = compose("test_workers:slow_task", storage=url, study_name="w", **args)
        except BaseException as err:  # noqa: BLE001 (reported by the assertion below)
            done["error"] = err

    composer = threading.Thread(target=run)
    composer.start()
    for _ in range(600):  # start the worker once the study exists
        assert "error" not in done, done.get("error")
        try:
            load_study(open_storage(url), "w")
            break
        except Exception:  # noqa: BLE001
            threading.Event().wait(0.05)
    else:
        raise AssertionError("the composition never created its study")
    worker = subprocess.Popen([sys.executable, "-m", "lrkit.cli.main", "worker", "--study", "w", "--storage", url],
                              cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    composer.join(timeout=180)
    out, err = worker.communicate(timeout=120)
    assert worker.returncode == 0, err[-1000:]
    ran = re.search(r"worker ran (\d+) trials", out)
    assert ran and int(ran.group(1)) >= 1, (out, err[-1000:])
    assert done["c"].best is not None and len(done["c"].nodes) == 3 + 2 * 3


def test_stage_one_starts_from_what_the_storage_knows(tmp_path: Path) -> None:
    from fakes import FakeRunner  # noqa: F401  (a recommendation study first, with the real runner)

    from lrkit.lrbench.search.recommend import recommend

    url = f"sqlite:///{tmp_path / 'l.db'}"
    rec = recommend("digits-mlp", target=0.9, budget=600, n_trials=3, storage=url, lr_range=(0.02, 0.5),
                    families=("fixed", "cosine"), optimizer="sgd", baselines=(), eval_every=50)
    known = rec.best.spec
    c = compose("digits-mlp", storage=url, study_name="c", **dict(ARGS, stages=1))
    first = [n for n in c.nodes if n.stage == 0]
    assert any(n.kind == "lookup" and n.spec == known for n in first)
    off = compose("digits-mlp", storage=url, study_name="c2", lookup=False, **dict(ARGS, stages=1))
    assert not any(n.kind == "lookup" for n in off.nodes)


def test_the_default_candidates_include_a_plateau_switch_written_out_as_its_join(tmp_path: Path) -> None:
    c = compose("digits-mlp", storage=f"sqlite:///{tmp_path / 'p.db'}", **dict(ARGS, stages=2, beam=1, budget=400,
                                                                              candidates=5))
    kinds = [n.kind for n in c.nodes if n.stage == 1]
    assert kinds == ["continue", "decay", "shrink", "switch", "plateau"]
    plateau = next(n for n in c.nodes if n.kind == "plateau")
    assert "plateau" not in plateau.spec and plateau.spec.startswith("join(")  # what it decided, a pure join
    study, _ = _study(f"sqlite:///{tmp_path / 'p.db'}")
    trial = study.get_trials()[plateau.number].user_attrs
    assert trial["lrkit_spec"].count("plateau(") == 1  # it trained the plateau itself
    replay = run_trial(get_task("digits-mlp"), plateau.spec, budget=400, target=0.995, seed=0, on="val", eval_every=50,
                       stop_at_target=False, early_stop=False)
    stored = trial["lrkit_result"]["curve"]
    assert [p["val_loss"] for p in stored] == [p.val_loss for p in replay.curve]


def test_compose_json_counts_stages_as_the_table_does_and_keeps_progress_on_stderr(tmp_path: Path, capsys) -> None:  # noqa: ANN001
    import json

    from lrkit.cli.main import main

    argv = ["compose", "--task", "digits-mlp", "--budget", "100", "--eval-every", "50", "--stages", "2",
            "--candidates", "2", "--beam", "1", "--lr-range", "0.05:0.5", "--storage", f"sqlite:///{tmp_path / 'c.db'}"]
    main([*argv, "--json"])
    out, err = capsys.readouterr()
    nodes = json.loads(out)["nodes"]
    assert sorted({n["stage"] for n in nodes}) == [1, 2] and "stage 1/2: 2 trials to update 50" in err
    main(argv)  # the same study again: its table
    table = capsys.readouterr().out.splitlines()
    rows = {int(line.split()[1]): int(line.split()[0]) for line in table[1:] if line[:1].isdigit()}
    assert rows == {n["number"]: n["stage"] for n in nodes}
    # `lrkit results` on the composition's study gives the same tree as data, not a ranking of stage trials
    storage = argv[argv.index("--storage") + 1]
    main(["results", "--storage", storage, "--format", "json"])
    assert json.loads(capsys.readouterr().out) == json.loads(out)
    main(["results", "--storage", storage, "--format", "csv"])
    import csv
    import io

    csv_rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert [(int(r["number"]), int(r["stage"]), r["chosen"] == "True") for r in csv_rows] == \
        [(n["number"], n["stage"], n["chosen"]) for n in nodes]
    assert {r["optimizer_kwargs"] for r in csv_rows} == {"{}"}  # JSON in a cell, not a Python repr


def test_shrinking_a_shrunk_segment_shrinks_its_factor() -> None:
    from lrkit.lrbench.composition.segments import PathSoFar, next_segments
    from lrkit.spec import parse

    path = PathSoFar(((0, "EXP(k0=0.4, gamma=0.99)"),))
    once = dict(next_segments(path, 100, 300, 0.01, 0.5, 3, seed=0))["shrink"]
    assert once.segments[-1] == (100, "scale(EXP(k0=0.4, gamma=0.99), factor=0.1)")
    twice = dict(next_segments(once, 200, 300, 0.01, 0.5, 3, seed=0))["shrink"]
    assert twice.segments[-1] == (200, "scale(EXP(k0=0.4, gamma=0.99), factor=0.01)")
    assert parse(twice.segments[-1][1])(7) == pytest.approx(parse("EXP(k0=0.4, gamma=0.99)")(7) / 100, rel=1e-12)
