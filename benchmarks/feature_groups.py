"""Each feature group alone under grouped 5-fold CV (no fine-tuning: seconds, not minutes).

The embedding group here is the zero-shot base cosine only; benchmarks/accuracy.py adds
the fine-tuned cosine. Writes benchmarks/results/feature_groups.md.

    python benchmarks/feature_groups.py [--data PATH]
"""

from __future__ import annotations

import argparse
from pathlib import Path

from hybrid_sim.api import read_labelled
from hybrid_sim.apps.ablation import ablation_table, cross_fitted_features

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data" / "doxa_train.csv")
    args = parser.parse_args()
    pairs, y, _ = read_labelled(args.data)
    matrix = cross_fitted_features(pairs, y, embedding={"method": "none"})
    table = ablation_table(matrix, y)
    lines = ["| variant | MAE | Pearson | Spearman |", "|---|---|---|---|"]
    lines += [f"| {r.variant} | {r.mae:.2f} | {r.pearson:.3f} | {r.spearman:.3f} |"
              for r in table.itertuples()]
    text = "\n".join(lines) + "\n"
    out = ROOT / "benchmarks" / "results" / "feature_groups.md"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text)
    print(text)


if __name__ == "__main__":
    main()
