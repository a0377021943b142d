"""experiments/limit_sweep.py: the sweep that bounds the limit (issue 18, item 1) answers as a dense run would."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parents[1] / "experiments"))
import limit_sweep  # noqa: E402

from lrkit.lrbench.run.runner import run_trial  # noqa: E402
from lrkit.lrbench.tasks.catalogue import get_task  # noqa: E402


def test_only_matches_whole_words() -> None:
    assert limit_sweep.words_start("Prodigy wsd 1", "Prodigy wsd 1")
    assert not limit_sweep.words_start("Prodigy wsd 10", "Prodigy wsd 1")
    assert limit_sweep.words_start("AdamWScheduleFree wsd 0.01", "AdamWScheduleFree")
    assert limit_sweep.words_start("Prodigy constant 1", "Prodigy ")
    assert not limit_sweep.words_start("adam wsd 0.01", "Adam")


def test_a_resumed_file_keeps_every_runs_prefixes() -> None:
    assert limit_sweep.merged_only({"only": ["a 1"]}, ["b 2", "a 1"]) == ["a 1", "b 2"]
    assert limit_sweep.merged_only({}, ["b 2"]) == ["b 2"]
    assert limit_sweep.merged_only({"only": []}, ["b 2"]) == []  # it was the whole grid already
    assert limit_sweep.merged_only({"only": ["a 1"]}, []) == []  # this run is the whole grid


def test_first_moves_its_matches_to_the_front_in_its_order_and_keeps_every_configuration() -> None:
    chosen = [(label,) for label in ("sgd wsd 1", "adam wsd 0.1", "adam cosine 1", "Prodigy wsd 10", "Prodigy wsd 1")]
    order = limit_sweep.first_of(chosen, ["Prodigy wsd 1", "adam"])
    assert [c[0] for c in order] == ["Prodigy wsd 1", "adam wsd 0.1", "adam cosine 1", "sgd wsd 1", "Prodigy wsd 10"]
    assert limit_sweep.first_of(chosen, []) == chosen


def test_extra_lrs_refine_every_grid_between_its_points(monkeypatch) -> None:
    monkeypatch.setattr(limit_sweep, "task_lr", lambda task: 0.1)  # no range test
    task = get_task("digits-mlp")
    labels = [c[0] for c in limit_sweep.configs(task, 1000, (0.0133,))]
    assert labels.index("AdamWScheduleFree wsd 0.01") + 1 == labels.index("AdamWScheduleFree wsd 0.0133")
    assert len(labels) == len(limit_sweep.configs(task, 1000)) + 16  # 4 optimizers x 4 shapes


def test_skipping_the_evaluations_after_the_target_changes_no_answer() -> None:
    task = get_task("digits-mlp")
    kw = dict(budget=300, seed=0, optimizer="adam", optimizer_kwargs={})
    forked = limit_sweep.train("digits-mlp", "adam wsd 0.01", "adam", {}, "FIX(k0=0.01)", "policy", 0, 300, 25)
    dense = run_trial(task, "FIX(k0=0.01)", eval_every=25, stop_at_target=False, early_stop=False, on="test", **kw)
    assert forked["steps"] is not None and forked["steps"] < 300  # it forked at the crossing
    assert (forked["steps"], forked["final_acc"]) == (dense.test_steps_to_target, dense.final_acc)


def test_a_partial_sweep_is_named_by_its_count_not_its_prefixes() -> None:
    import peers

    seeds = lambda steps, acc: [{"test_steps_to_target": s, "final_acc": acc} for s in steps]  # noqa: E731
    res = {"budget": 600, "held_out_seeds": [8, 9, 10],
           "rows": {"recommended": {"seeds": seeds([150, 150, 200], 0.88)},
                    "schedulefree-adamw": {"seeds": seeds([300, 300, 350], 0.85)}}}
    rows = [{"label": f"adam wsd {lr}", "mean_steps": 600 - lr * 10_000, "std_steps": 0.0} for lr in (0.001, 0.01)]
    limit = {"rows": rows, "seeds": [8, 9, 10], "only": ["adam wsd 0.001", "adam wsd 0.01"]}
    text = peers.verdict(res, limit)
    assert "adam wsd 0.01, the fastest of the 2 configurations of a partial sweep (not the limit), took 500 ± 0" in text
    assert "**0.33×** that." in text and "adam wsd 0.001" not in text  # 166.7 / 500; no list of prefixes
    assert "the limit (adam wsd 0.01, the fastest of 2" in peers.verdict(res, dict(limit, only=None))
    line = dict(limit, only=["adam wsd"])
    assert "the 2 configurations starting 'adam wsd' (not the limit)" in peers.verdict(res, line)


def test_the_files_of_a_sweep_read_as_one() -> None:
    import pytest
    from _results import merge_sweeps

    def part(labels: list[str], only: list[str] | None, seeds=(8, 9, 10), acc: float = 0.8) -> dict:
        rows = [{"label": x, "mean_steps": 300.0, "std_steps": 0.0, "mean_acc": acc, "std_acc": 0.0} for x in labels]
        return {"task": "t", "target": 0.8, "budget": 600, "seeds": list(seeds), "eval_every": 50, "only": only,
                "seconds": 10.0, "rows": rows}

    merged = merge_sweeps([part(["a 1", "b 2"], ["a 1", "b 2"]), part(["b 2", "c 3"], ["b 2", "c 3"])])["t"]
    assert [r["label"] for r in merged["rows"]] == ["a 1", "b 2", "c 3"] and merged["seconds"] == 20.0
    assert merged["only"] == ["a 1", "b 2", "c 3"]
    assert merge_sweeps([part(["a 1"], ["a 1"]), part(["c 3"], None)])["t"]["only"] is None  # the whole grid
    with pytest.raises(SystemExit, match="two different rows for 'b 2'"):
        merge_sweeps([part(["b 2"], ["b 2"]), part(["b 2"], ["b 2"], acc=0.9)])
    with pytest.raises(SystemExit, match=r"differ in seeds \(\[8, 9, 10\] and \[2, 3, 4\]\)"):
        merge_sweeps([part(["a 1"], ["a 1"]), part(["c 3"], ["c 3"], seeds=(2, 3, 4))])


def test_a_stopped_run_of_the_whole_grid_is_saved_as_the_partial_sweep_it_is() -> None:
    rows = [{"label": "Adam constant 0.001"}, {"label": "Adam constant 0.01"}]
    # while it runs (or once stopped), a whole-grid run names the configurations it holds
    assert limit_sweep.saved_only({}, [], rows, final=False) == ["Adam constant 0.001", "Adam constant 0.01"]
    # finished, it is the whole grid; a limited run keeps its prefixes either way
    assert limit_sweep.saved_only({}, [], rows, final=True) == []
    assert limit_sweep.saved_only({}, ["Adam"], rows, final=False) == ["Adam"]
    # resuming a stopped whole-grid file with the same command: still partial until it ends
    stopped = {"only": ["Adam constant 0.001"]}
    assert limit_sweep.saved_only(stopped, [], rows, final=False) == ["Adam constant 0.001", "Adam constant 0.01"]
    assert limit_sweep.saved_only(stopped, [], rows, final=True) == []
