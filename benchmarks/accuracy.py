"""Accuracy benchmark: grouped 5-fold CV on the DOXA training data.

Rows: predicting the median, bag of words alone, the base cosine, the fine-tuned cosine
alone, the classical groups, and the full hybrid (with and without zero-shot cosines of
extra base models). Every row uses the same folds (by unordered pair); the tuned cosine
is out-of-fold, computed once. Writes benchmarks/results/accuracy.json and .md.

    python benchmarks/accuracy.py [--data PATH] [--extra-base all-mpnet-base-v2]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import pandas as pd

from hybrid_sim.api import read_labelled
from hybrid_sim.apps.ablation import cross_fitted_features
from hybrid_sim.stacker.stacking import (
    DEFAULT_PARAMS,
    cv_predict,
    cv_predict_selected,
    median_baseline,
    regression_metrics,
)

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATA = ROOT.parent / "shared" / "data" / "doxa_train.csv"
# alternatives to the default stacker parameters, compared on the full feature set
STACKER_GRID = {
    "default": {},
    "7 leaves, 300 trees, colsample 0.8": {"num_leaves": 7, "n_estimators": 300,
                                           "colsample_bytree": 0.8},
    "15 leaves, min_child 20": {"num_leaves": 15, "min_child_samples": 20},
    "600 stumps": {"n_estimators": 600},
    "min_child 100, colsample 0.3": {"min_child_samples": 100, "colsample_bytree": 0.3},
    "no L2": {"reg_lambda": 0.0},
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--method", default="lora")
    parser.add_argument("--extra-base", action="append", default=[])
    parser.add_argument("--oof", type=Path,
                        help="out-of-fold tuned cosines (.npy) from benchmarks/embedding_cv.py, "
                             "same folds, to skip fine-tuning again")
    parser.add_argument("--ensemble-oof", type=Path, action="append", default=[],
                        help="out-of-fold tuned cosines (.npy, same folds) of one member of a "
                             "fine-tuned ensemble; the members' mean stands in for the tuned cosine, "
                             "as in EmbeddingCosine(ensemble=...), in the rows of the shipped "
                             "'accurate' model (repeat for each member)")
    parser.add_argument("--other-oof", action="append", default=[], metavar="LABEL=PATH",
                        help="another model's out-of-fold tuned cosines (.npy, same folds): adds "
                             "a 'LABEL cosine alone' row, to compare with the --oof model (repeatable)")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "accuracy")
    args = parser.parse_args()

    pairs, y, info = read_labelled(args.data)
    embedding = {"method": args.method, "epochs": args.epochs,
                 "extra_bases": tuple(args.extra_base), "show_progress": False}
    start = time.perf_counter()
    tuned = np.load(args.oof) if args.oof else None
    matrix = cross_fitted_features(pairs, y, embedding=embedding, tuned_oof=tuned)
    print(f"features in {time.perf_counter() - start:.0f}s: {matrix.seconds}")
    names = matrix.names
    extra = [n for n in names if n.startswith("embedding__cosine_")
             and n not in ("embedding__cosine_tuned", "embedding__cosine_base")]

    def cols(selected: list[str]) -> tuple[np.ndarray, list[str]]:
        idx = [names.index(n) for n in selected]
        return matrix.values[:, idx], selected

    classical = [n for n in names if not n.startswith("embedding__")]
    variants = {
        "bag of words alone": [n for n in names if n.startswith("bow__")],
        "base cosine (MiniLM, zero-shot)": ["embedding__cosine_base"],
        "fine-tuned cosine alone": ["embedding__cosine_tuned"],
        "classical groups (bow, fuzzy, negation)": classical,
        "tuned + base cosine": ["embedding__cosine_tuned", "embedding__cosine_base"],
        "tuned cosine + classical groups": [*classical, "embedding__cosine_tuned"],
        "hybrid: classical + tuned + base cosine": [*classical, "embedding__cosine_tuned",
                                                   "embedding__cosine_base"],
    }
    cap_rows = []
    # the shipped default (scripts/train_default.py) leaves the base cosine out, and keeps
    # the groups that lower grouped-CV MAE: measured here with the selection nested
    values, chosen = cols(variants["tuned cosine + classical groups"])
    left, right = pairs.iloc[:, 0].tolist(), pairs.iloc[:, 1].tolist()
    pred, picks = cv_predict_selected(values, y, matrix.folds, chosen, left, right, role_reversal_cap=20.0)
    cap_rows.append({"variant": "group selection (nested) + contrast cap 20: the shipped default",
                     **regression_metrics(y, pred), "seconds": 0.0,
                     "groups_per_fold": ["+".join(g) for g in picks]})
    if args.ensemble_oof:
        # the mean of the members' tuned cosines, in the tuned column: what the ensemble stacks
        members = [np.load(p) for p in args.ensemble_oof]
        idx = names.index("embedding__cosine_tuned")
        ensemble = matrix.values.copy()
        ensemble[:, idx] = np.mean(members, axis=0)
        label = f"fine-tuned ensemble cosine alone (mean of {len(members)} models)"
        pred = cv_predict(ensemble[:, [idx]], y, matrix.folds, ["embedding__cosine_tuned"])
        cap_rows.append({"variant": label, **regression_metrics(y, pred), "seconds": 0.0})
        chosen = variants["tuned cosine + classical groups"]
        pred, picks = cv_predict_selected(ensemble[:, [names.index(n) for n in chosen]], y, matrix.folds,
                                          chosen, left, right, role_reversal_cap=20.0)
        cap_rows.append({"variant": "ensemble: group selection (nested) + contrast cap 20: "
                                    "the shipped accurate model", **regression_metrics(y, pred),
                         "seconds": 0.0, "groups_per_fold": ["+".join(g) for g in picks]})
    for name in extra:
        variants[f"zero-shot {name.removeprefix('embedding__cosine_')} cosine alone"] = [name]
        variants[f"hybrid + {name.removeprefix('embedding__cosine_')} zero-shot"] = names
    rows = [{"variant": "predict the median", **regression_metrics(y, median_baseline(y, matrix.folds)),
             "seconds": 0.0}]
    for label, selected in variants.items():
        t = time.perf_counter()
        values, chosen = cols(selected)
        pred = cv_predict(values, y, matrix.folds, chosen)
        rows.append({"variant": label, **regression_metrics(y, pred),
                     "seconds": round(time.perf_counter() - t, 2)})
        print(json.dumps(rows[-1]))
    for spec in args.other_oof:
        label, sep, path = spec.partition("=")
        if not sep:
            parser.error(f"--other-oof {spec!r} is not LABEL=PATH")
        other = np.load(path)[:, None]
        pred = cv_predict(other, y, matrix.folds, ["embedding__cosine_tuned"])
        rows.append({"variant": f"{label} cosine alone", **regression_metrics(y, pred), "seconds": 0.0})
    rows.extend(cap_rows)
    grid = []
    for label, params in STACKER_GRID.items():
        pred = cv_predict(matrix.values, y, matrix.folds, names, params)
        grid.append({"stacker": label, "params": {**DEFAULT_PARAMS, **params},
                     **regression_metrics(y, pred)})
        print(json.dumps({"stacker": label, "mae": grid[-1]["mae"]}))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    payload = {"data": info, "embedding": embedding, "oof_file": str(args.oof or ""),
               "ensemble_oof_files": [str(p) for p in args.ensemble_oof],
               "other_oof_files": args.other_oof,
               "feature_seconds": matrix.seconds, "variants": rows, "stacker_grid": grid}
    args.out.with_suffix(".json").write_text(json.dumps(payload, indent=2, default=float))
    table = pd.DataFrame(rows)
    other_args = "".join(f" --other-oof '{o}'" for o in args.other_oof)
    lines = ["| variant | MAE | Pearson | Spearman |", "|---|---|---|---|"]
    lines += [f"| {r.variant} | {r.mae:.2f} | {r.pearson:.3f} | {r.spearman:.3f} |"
              for r in table.itertuples()]
    lines += ["", f"Features: {', '.join(f'{k} {v:.0f}s' for k, v in matrix.seconds.items())} "
              f"on {info['n_rows']} rows (grouped 5-fold CV, `python benchmarks/accuracy.py"
              f"{' --oof ' + str(args.oof) if args.oof else ''}"
              f"{''.join(' --ensemble-oof ' + str(p) for p in args.ensemble_oof)}"
              f"{other_args}"
              f"{''.join(' --extra-base ' + b for b in args.extra_base)}`)."]
    args.out.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
