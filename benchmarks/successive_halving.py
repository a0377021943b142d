"""Successive halving's rung (rule 3 of the search's pruner): what it saves, and whether it stops the winner.

Replays the candidates of stored searches, in the order they ran, through
:class:`lrkit.lrbench.search.pruning.TargetPruner` twice: with its rung (the default: ``eta = 2`` at ``B / 9``)
and without (``rung_fraction=None``, the pruner before rule 3). Each candidate's recorded validation curve is
reported evaluation by evaluation (less the study's calibrated offset); a candidate stops where the pruner
says so, where it reaches the target, or where its recorded curve ends (where the search stopped it). Per
study: the candidates' updates with and without the rung, their ratio, and whether the candidate that
reached the target first without the rung (the search's pick) still does with it.

What a replay cannot show: a live search's sampler would draw other candidates after a trial stopped earlier
(TPE learns from it), so the live saving differs; the search's own runs are measured in benchmarks/RESULTS.md.

    .venv/bin/python benchmarks/successive_halving.py                        # the curves in benchmarks/data
    .venv/bin/python benchmarks/successive_halving.py --rung 0.2 --eta 3    # another rung
    .venv/bin/python benchmarks/successive_halving.py --export out/exp21/peers-*.db --json curves.json

The curves kept in ``benchmarks/data/issue18/search-curves.json`` are the searches of
``experiments/peers.py`` (search seeds 0-1) run for issue 18 on the three Fashion tasks.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

CURVES = Path(__file__).parent / "data" / "issue18" / "search-curves.json"


def export(dbs: list[str]) -> list[dict]:
    """The first-seed candidates (not repeats, not duplicates) of every search study in ``dbs``, in trial order."""
    import optuna

    from lrkit.lrbench.study import schema as sc

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    out = []
    for db in dbs:
        storage = optuna.storages.RDBStorage(f"sqlite:///{db}")
        for summary in optuna.get_all_study_summaries(storage):
            study = optuna.load_study(study_name=summary.study_name, storage=storage)
            config = study.user_attrs.get(sc.ATTR_CONFIG) or {}
            if not config or config.get("compose"):
                continue
            cands = [t for t in study.trials if t.user_attrs.get(sc.ATTR_ROLE) == "candidate"
                     and not t.user_attrs.get(sc.ATTR_REPEAT) and t.user_attrs.get(sc.ATTR_RESULT)
                     and t.user_attrs.get(sc.ATTR_DUPLICATE_OF) is None
                     and t.user_attrs.get(sc.ATTR_SEED, config.get("seed", 0)) == config.get("seed", 0)]
            if len(cands) < 2:
                continue
            out.append({"db": db, "study": summary.study_name, "budget": config["budget"], "target": config["target"],
                        "offset": (study.user_attrs.get(sc.ATTR_VAL_CALIBRATION) or {}).get("offset", 0.0),
                        "candidates": [{"number": t.number, "spec": t.user_attrs[sc.ATTR_SPEC],
                                        "optimizer": t.user_attrs.get(sc.ATTR_OPTIMIZER),
                                        "optimizer_kwargs": t.user_attrs.get(sc.ATTR_OPT_KWARGS),
                                        "lr_driver": t.user_attrs.get(sc.ATTR_LR_DRIVER, "policy"),
                                        "curve": [[p["step"], p.get("val_acc")] for p in
                                                  t.user_attrs[sc.ATTR_RESULT]["curve"]]} for t in cands]})
    return out


def replay(study: dict, rung_fraction: float | None, eta: float) -> dict[int, tuple[int, bool]]:
    """Trial number -> (updates it ran, whether it reached the target) when its curve is replayed through the pruner."""
    import optuna

    from lrkit.lrbench.search.pruning import TargetPruner
    from lrkit.lrbench.study import schema as sc

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    pruner = TargetPruner(study["budget"], study["target"], rung_fraction=rung_fraction, eta=eta)
    live = optuna.create_study(pruner=pruner)
    out = {}
    for cand in study["candidates"]:
        trial = live.ask()
        for key, value in ((sc.ATTR_ROLE, "candidate"), (sc.ATTR_SEED, 0), (sc.ATTR_SPEC, cand["spec"])):
            trial.set_user_attr(key, value)
        ran, reached, stopped = 0, False, False
        for step, val in cand["curve"]:
            if val is None:
                continue
            acc = val - study["offset"]
            trial.report(1 - acc, step)
            ran = step
            if acc >= study["target"]:
                reached = True
                break
            if trial.should_prune():
                stopped = True
                break
        live.tell(trial, state=optuna.trial.TrialState.PRUNED) if stopped and not reached else live.tell(trial, ran)
        out[cand["number"]] = (ran, reached)
    return out


def rows(studies: list[dict], rung_fraction: float, eta: float) -> list[dict]:
    """Per study: the candidates' updates (in full-budget trials) without and with the rung, the pick without
    the rung (the first to reach the target) and whether it ran the same with it."""
    out = []
    for s in studies:
        before, after = replay(s, None, eta), replay(s, rung_fraction, eta)
        reached = {n: r for n, (r, ok) in before.items() if ok}
        pick = min(reached, key=lambda n: (reached[n], n)) if reached else None
        out.append({"study": f"{Path(s['db']).parent.name}/{s['study']}", "pick": pick, "pick_at": reached.get(pick),
                    "without": sum(r for r, _ in before.values()) / s["budget"],
                    "with": sum(r for r, _ in after.values()) / s["budget"],
                    "kept": pick is None or after[pick] == before[pick]})
    return out


def compare(studies: list[dict], rung_fraction: float, eta: float) -> None:
    """Print :func:`rows` as a table, and the totals."""
    print(f"rung at {rung_fraction:.3g} of the budget, top 1/{eta:g} go on; updates in full-budget trials")
    print(f"| {'study':<46} | without | with | with / without | pick without | kept |")
    print("|---|---|---|---|---|---|")
    table = rows(studies, rung_fraction, eta)
    for r in table:
        print(f"| {r['study']:<46} | {r['without']:.2f} | {r['with']:.2f} | {r['with'] / r['without']:.2f} | "
              f"trial {r['pick']} at {r['pick_at']} | {'yes' if r['kept'] else 'NO'} |")
    without, with_ = sum(r["without"] for r in table), sum(r["with"] for r in table)
    print(f"\nall {len(table)} studies: {without:.2f} -> {with_:.2f} trials ({with_ / without:.2f}x); "
          f"the pick kept in {sum(r['kept'] for r in table)}/{len(table)}")


def main() -> None:
    from lrkit.lrbench.search.pruning import ETA, RUNG_FRACTION

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--curves", default=str(CURVES), help="the exported curves (default: %(default)s)")
    parser.add_argument("--rung", type=float, default=RUNG_FRACTION, help="the rung, a fraction of the budget")
    parser.add_argument("--eta", type=float, default=ETA, help="the top 1/eta go on past the rung")
    parser.add_argument("--export", nargs="+", metavar="DB", help="export the candidates of these SQLite studies")
    parser.add_argument("--json", help="with --export: where to write them")
    args = parser.parse_args()
    if args.export:
        data = export(args.export)
        Path(args.json).write_text(json.dumps(data, separators=(",", ":")))
        print(f"{len(data)} studies, {sum(len(s['candidates']) for s in data)} candidates -> {args.json}")
        return
    compare(json.loads(Path(args.curves).read_text()), args.rung, args.eta)


if __name__ == "__main__":
    main()
